package host

import (
	"fmt"
	"strconv"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/admission"
)

// firstUserFieldID is Milvus's first user field ID (common.StartOfUserFieldID):
// IDs 0 and 1 are the row ID and timestamp, 2..99 are never assigned.
const firstUserFieldID = 100

// impossibleSelector returns the first field selector of m that no
// collection schema can satisfy: a decimal field ID between the system
// fields and the first user field. Names and other IDs depend on the
// schema and are checked per task.
func impossibleSelector(m abi.Manifest) (string, bool) {
	for _, sel := range m.Fields {
		if id, err := strconv.ParseInt(sel, 10, 64); err == nil && id > abi.FieldIDTimestamp && id < firstUserFieldID {
			return sel, true
		}
	}
	return "", false
}

// CheckRunnable refuses a plugin whose manifest m (read from a trial
// instance) asks for memory no task could be granted: its minimum memory
// (the module's declared minimum or the manifest's min_memory, whichever
// is larger) above the runtime's MaxGrant or above poolBytes, the largest
// pool its tasks would lease from (0 skips that check). The error is an
// *AdmissionError (rule min-memory) matching ErrRefused.
func (r *Runtime) CheckRunnable(p *Plugin, m abi.Manifest, poolBytes int64) error {
	need := max(p.MinMemory(), m.MinMemory)
	refuse := func(limit string, n uint64) error {
		return &AdmissionError{Plugin: p.ID(), Rule: admission.RuleMemory,
			Detail: fmt.Sprintf("needs at least %d bytes of memory (module minimum %d, manifest min_memory %d), above %s of %d bytes: no task can run it",
				need, p.MinMemory(), m.MinMemory, limit, n)}
	}
	if need > r.cfg.MaxGrant {
		return refuse("the runtime's MaxGrant", r.cfg.MaxGrant)
	}
	if poolBytes > 0 && need > uint64(poolBytes) {
		return refuse("the memory pool", uint64(poolBytes))
	}
	return nil
}
