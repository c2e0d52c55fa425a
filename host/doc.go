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
// an object-store prefix and hot-reloads them: each binary is admitted in
// its own goroutine with its own deadline, and a new version whose first
// tasks keep failing by its own fault (StrategyFault) is rolled back to
// the previous one.
//
// A Host is the compaction pipeline embedders call: New(ctx, Options) and
// Compact(ctx, plan) run a Milvus mix or L0 CompactionPlan end to end —
// validate the plan, lease memory from a mempool.Pool, stream deltalogs and
// insert binlogs through the strategy (the plugin the Registry serves for
// the plan type, WithPlugin, or Native for a strategy linked in-process),
// apply its decisions to every column and upload the outputs — and return
// the CompactionPlanResult. A failed task leaves no new object behind
// (CompactError names plan, plugin and stage).
package host
