// Package admission holds the static rules a strategy module must pass
// before the host runs any of its code: ABI version proof, import
// allowlist, required exports with their signatures, and memory bounds.
// Each violation names the rule it broke; the host wraps it with the
// plugin's identity.
package admission

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/compacthost/compacthost/abi"
)

// Rule names, stable strings that appear in refusal messages and that
// tests and operators can match on.
const (
	RuleSize       = "size-limit"
	RulePin        = "sha256-pin"
	RuleValidate   = "validation"
	RuleABIVersion = "abi-version"
	RuleImports    = "import-allowlist"
	RuleExports    = "required-exports"
	RuleMemory     = "min-memory"
	RuleManifest   = "manifest"
)

// Violation is one broken rule.
type Violation struct {
	Rule   string
	Detail string
}

func (v *Violation) Error() string { return v.Rule + ": " + v.Detail }

const i32, i64 = api.ValueTypeI32, api.ValueTypeI64

type sig struct{ params, results []api.ValueType }

// HostImports are the functions of the compact_v1 host module and their
// signatures.
var HostImports = map[string]sig{
	abi.ImportEmit:  {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportLog:   {[]api.ValueType{i32, i32, i32}, nil},
	abi.ImportFail:  {[]api.ValueType{i32, i32, i32}, nil},
	abi.ImportProbe: {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
}

// RequiredExports are the guest exports every v1 strategy must have.
var RequiredExports = map[string]sig{
	abi.ExportAlloc:    {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportManifest: {nil, []api.ValueType{i64}},
	abi.ExportBegin:    {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	abi.ExportDeletes:  {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	abi.ExportBatch:    {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	abi.ExportFinish:   {nil, []api.ValueType{i32}},
}

// WASIAllowed is abi.AllowedWASIImports as a set. An actual Go 1.26
// reactor (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, importing os and
// fmt) imports exactly: args_get, args_sizes_get, environ_get,
// environ_sizes_get, clock_time_get, poll_oneoff, sched_yield, random_get,
// proc_exit, fd_write, fd_close, fd_fdstat_get, fd_fdstat_set_flags,
// fd_prestat_get, fd_prestat_dir_name; the ABI adds clock_res_get and
// fd_read. Nothing that opens files (path_*) or sockets (sock_*).
var WASIAllowed = func() map[string]bool {
	m := make(map[string]bool, len(abi.AllowedWASIImports))
	for _, n := range abi.AllowedWASIImports {
		m[n] = true
	}
	return m
}()

// Module describes what admission reads from a compiled module.
type Module interface {
	ImportedFunctions() []api.FunctionDefinition
	ExportedFunctions() map[string]api.FunctionDefinition
	ImportedMemories() []api.MemoryDefinition
	ExportedMemories() map[string]api.MemoryDefinition
}

var _ Module = wazero.CompiledModule(nil)

// PageSize is the wasm page size in bytes.
const PageSize = 65536

// Check applies the ABI, import, export and memory rules in that order and
// returns the first violation, or nil. maxGrant is the largest memory grant
// the host will ever give; the module's declared minimum must fit it. It
// returns the declared minimum memory in bytes.
func Check(m Module, maxGrant uint64) (minBytes uint64, v *Violation) {
	if v := checkVersion(m); v != nil {
		return 0, v
	}
	if v := checkImports(m); v != nil {
		return 0, v
	}
	if v := checkExports(m); v != nil {
		return 0, v
	}
	return checkMemory(m, maxGrant)
}

// checkVersion looks at every name that carries the ABI stem; a version
// other than 1 is refused with the version it found.
func checkVersion(m Module) *Violation {
	var names []string
	for _, f := range m.ImportedFunctions() {
		mod, _, _ := f.Import()
		names = append(names, mod)
	}
	for n := range m.ExportedFunctions() {
		names = append(names, n)
	}
	sort.Strings(names)
	proved := false
	for _, n := range names {
		ver, ok := abi.ParseVersionedName(n)
		if !ok {
			continue
		}
		if ver != abi.Version {
			return &Violation{RuleABIVersion, fmt.Sprintf("unsupported ABI version %d (name %q); this host speaks version %d", ver, n, abi.Version)}
		}
		proved = true
	}
	if !proved {
		return &Violation{RuleABIVersion, "no compact_v1 import or compact_v1_* export: not a compact-host strategy"}
	}
	return nil
}

func checkImports(m Module) *Violation {
	if len(m.ImportedMemories()) > 0 {
		return &Violation{RuleImports, "module imports a memory; strategies must define and export their own"}
	}
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case abi.ModuleName:
			want, ok := HostImports[name]
			if !ok {
				return &Violation{RuleImports, fmt.Sprintf("unknown host function %s.%s", mod, name)}
			}
			if !sameSig(f, want) {
				return &Violation{RuleImports, fmt.Sprintf("%s.%s has signature %s, want %s", mod, name, sigOf(f), want)}
			}
		case abi.WASIModule:
			if !WASIAllowed[name] {
				return &Violation{RuleImports, fmt.Sprintf("WASI function %s.%s is not allowed (no filesystem, sockets or other host access)", mod, name)}
			}
		default:
			return &Violation{RuleImports, fmt.Sprintf("import %s.%s from unknown module %q (allowed: %s, %s)", mod, name, mod, abi.ModuleName, abi.WASIModule)}
		}
	}
	return nil
}

func checkExports(m Module) *Violation {
	ex := m.ExportedFunctions()
	names := make([]string, 0, len(RequiredExports))
	for n := range RequiredExports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f, ok := ex[n]
		if !ok {
			return &Violation{RuleExports, "missing export " + n}
		}
		if want := RequiredExports[n]; !sameSig(f, want) {
			return &Violation{RuleExports, fmt.Sprintf("export %s has signature %s, want %s", n, sigOf(f), want)}
		}
	}
	if f, ok := ex["_initialize"]; ok && (len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0) {
		return &Violation{RuleExports, "export _initialize must take and return nothing, has " + sigOf(f)}
	}
	if _, ok := m.ExportedMemories()["memory"]; !ok {
		return &Violation{RuleExports, `missing exported memory "memory"`}
	}
	return nil
}

func checkMemory(m Module, maxGrant uint64) (uint64, *Violation) {
	mem := m.ExportedMemories()["memory"]
	minBytes := uint64(mem.Min()) * PageSize
	if minBytes > maxGrant {
		return minBytes, &Violation{RuleMemory, fmt.Sprintf("declared minimum memory %d pages (%d bytes) exceeds the largest grant %d bytes", mem.Min(), minBytes, maxGrant)}
	}
	return minBytes, nil
}

func sameSig(f api.FunctionDefinition, want sig) bool {
	return equalTypes(f.ParamTypes(), want.params) && equalTypes(f.ResultTypes(), want.results)
}

func equalTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sigOf(f api.FunctionDefinition) string {
	return sig{f.ParamTypes(), f.ResultTypes()}.String()
}

func (s sig) String() string {
	names := func(ts []api.ValueType) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = api.ValueTypeName(t)
		}
		return strings.Join(parts, ",")
	}
	return "(" + names(s.params) + ")->(" + names(s.results) + ")"
}
