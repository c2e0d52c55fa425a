package host

import (
	"github.com/compacthost/compacthost/host/internal/admission"

	"context"
	"fmt"
	"time"
)

// unnamedRef is the provisional reference of a module admitted by AdmitUnnamed.
const unnamedRef = "unnamed@unversioned"

// AdmitUnnamed admits a module that comes without a name@version reference, such as a file given
// on the command line: it runs admission, starts one trial instance (with a grant of probeGrant
// bytes, or the module's minimum if larger) to read the manifest, and names the plugin after the
// manifest's name and version.
func (r *Runtime) AdmitUnnamed(ctx context.Context, wasm []byte, probeGrant uint64) (*Plugin, error) {
	p, err := r.Admit(ctx, unnamedRef, wasm)
	if err != nil {
		return nil, err
	}
	p.unnamed = true
	grant := min(max(probeGrant, p.MinMemory()), r.cfg.MaxGrant)
	inst, err := r.NewInstance(ctx, p, InstanceConfig{Grant: grant, Deadline: time.Now().Add(time.Minute), ManifestOnly: true})
	if err != nil {
		p.Release()
		return nil, err
	}
	m := inst.Manifest()
	inst.Close()
	if _, _, err := ParseRef(m.Name + "@" + m.Version); err != nil {
		p.Release()
		return nil, &AdmissionError{Plugin: p.id, Rule: admission.RuleManifest,
			Detail: fmt.Sprintf("manifest name %q and version %q do not form a plugin reference", m.Name, m.Version)}
	}
	// Nothing else holds p yet, so renaming it here races with no one.
	p.id.Name, p.id.Version, p.unnamed = m.Name, m.Version, false
	return p, nil
}
