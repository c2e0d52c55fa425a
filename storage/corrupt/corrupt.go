// Package corrupt marks errors about input objects whose bytes are not what
// the plan and the format say they are: a binlog descriptor naming another
// segment or field, a stats log whose bloom filter does not decode. Such an
// error is about the data, not the store or the strategy: retrying cannot
// help, and the object needs a person. The CLI maps it to "bad input".
//
// The package has no dependencies, so every decoder can use it.
package corrupt

import "errors"

// Err is matched (errors.Is) by every error Mark returns.
var Err = errors.New("corrupt input object")

// Mark returns err marked so that errors.Is(err, Err) holds; its message is
// err's, unchanged. Mark(nil) is nil.
func Mark(err error) error {
	if err == nil || errors.Is(err, Err) {
		return err
	}
	return marked{err}
}

type marked struct{ err error }

func (e marked) Error() string   { return e.err.Error() }
func (e marked) Unwrap() []error { return []error{e.err, Err} }
