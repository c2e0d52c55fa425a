package main

// Exit codes scripts can rely on.
const (
	exitOK         = 0
	exitFailure    = 1 // anything not listed below
	exitUsage      = 2 // unknown command or flag, missing or malformed argument
	exitNotFound   = 3 // a named file, object or plugin does not exist
	exitBadInput   = 4 // input exists but does not decode (corrupt binlog, bad plan)
	exitStorage    = 5 // the object store cannot be reached or refuses an operation
	exitPlugin     = 6 // a plugin failed admission (not a valid strategy module, or refused by a rule)
	exitCompaction = 7 // the strategy failed while running: trap, panic, out of memory, deadline
)

// codedError carries the exit code for an error.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}
