// Package bench is compact-host's measurement harness (issue 7): it
// generates Milvus collections with storage/gen, runs mix and L0
// compactions through the real host (wasm and native strategies), a
// copy-only floor built from segread and segwrite, hot swaps, concurrent
// plans under a small pool and zstd micro floors, each case in its own
// child process so that its peak RSS is its own, and reports MB/s of
// uncompressed input, rows/s, the lease and the peak RSS.
//
// cmd/benchrun is the command; TestRegressionGuard (-guard) is the short
// regression check against testdata/baseline.json. BENCH.md at the
// repository root has the figures and the exact commands.
package bench
