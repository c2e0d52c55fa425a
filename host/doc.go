// Package host runs compaction strategies as sandboxed WebAssembly modules
// (ABI v1) on wazero's compiler engine.
//
// A Runtime admits modules (static checks before any guest code runs),
// compiles them through a persistent compilation cache, and creates
// Instances whose linear memory is capped at a memory grant. Instances
// receive input batches written straight into guest memory and hand back
// decisions through the compact_v1 host module. Every failure is a typed
// error naming the plugin and the cause (AdmissionError, TaskError); a
// failed instance is discarded while the runtime and other instances keep
// running. A Registry loads name@version.wasm plugins from a directory or
// an object-store prefix and hot-reloads them.
package host
