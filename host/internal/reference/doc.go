// Package reference is a plain, native re-statement of Milvus's mix and L0
// compaction semantics (milvus-formats.md §2, §4, §5), used only by tests to
// check the real wasm pipeline row by row.
//
// It is deliberately simple and shares no logic with the pipeline or the
// strategies (it imports nothing from host/ or plugins/): every input segment
// is read whole into memory, rows are kept as Go values, the delete map is a
// Go map, and merging is a linear scan over the inputs' heads. Only the
// storage decoders (binlog, deltalog, statslog) and key builders are shared.
//
// # Mix
//
// [Mix] computes the expected result of a mix compaction plan: which input
// rows survive, in what order, and how they are split into outputs. A row
// (pk, ts) of input segment s is
//
//  1. deleted if s's own deltalogs hold a delete of pk with ts < delete ts
//     (the largest delete ts per pk is kept; equality keeps the row);
//  2. otherwise expired if plan.collection_ttl (ns) > 0 and
//     ttl_ms <= now_ms - physical_ms(ts), where now_ms is the physical part
//     of plan.start_time read as a hybrid timestamp;
//  3. otherwise kept.
//
// Order: when json_params use_merge_sort (default true) holds, every input
// has is_sorted, and 2 <= N <= max_segment_merge_sort (default 30), the
// surviving rows of the inputs are k-way merged by pk (Int64 numerically,
// VarChar byte-wise), ties broken by input index in the plan, then row
// index; otherwise inputs are taken in plan order, rows in row order.
//
// Outputs: rows go to output 0; before a row is placed, if the current
// output's accumulated row size (see [RowSize]) is >= plan.max_size, the
// next output is started. When no row survives there are zero outputs; a
// Milvus result then carries one placeholder segment with 0 rows
// ([MixResult.Placeholder]).
//
// # Row size
//
// The size of a row is the sum over every field of plan.schema (system
// fields 0 and 1 included) of:
//
//   - Bool 1, Int8 1, Int16 2, Int32 4, Int64 8, Timestamptz 8, Float 4,
//     Double 8 — also when the value is null;
//   - vectors their byte width: FloatVector dim×4, Float16Vector and
//     BFloat16Vector dim×2, Int8Vector dim, BinaryVector (dim+7)/8 — also
//     when null;
//   - VarChar, String, Text, JSON, Array, SparseFloatVector: the length in
//     bytes of the stored value plus 4 (a null counts as 4).
//
// Validity bitmaps are not counted. This is simpler than Milvus, which sums
// Arrow buffer sizes (Bool as bits, offsets as (n+1)×4, validity bitmaps,
// Array fields × an expansion ratio) and checks the size only once per
// record batch, so its outputs overshoot max_size by up to a batch; here
// the check is per row, so outputs are exactly predictable.
//
// # Values
//
// Row values are canonical Go values, one per field:
//
//	nil                         null
//	bool                        Bool
//	int8, int16, int32, int64   Int8, Int16, Int32, Int64, Timestamptz
//	float32, float64            Float, Double (compared by bit pattern)
//	string                      VarChar, String, Text
//	[]byte                      JSON, Array (protobuf bytes), SparseFloatVector
//	                            and fixed-width vectors (raw bytes)
//
// A field without binlogs for some chunks (schema evolution) holds its
// default value there, or null when it has none.
//
// # L0
//
// [L0] computes which L0 delete records each target segment receives: all
// (pk, ts) records of the L0 segments' deltalogs, L0 segments in plan order
// and records in file order, go to every target for which some pk stats
// object (only the compound file "1" when the target lists one, else every
// stats file of the pk field) has a bloom filter reporting pk and
// min <= pk <= max.
//
// # Comparing with a produced result
//
// [ReadMix] and [ReadL0] read a produced datapb.CompactionPlanResult back
// from the store into the same form, and [DiffMix] and [DiffL0] describe the
// first differences in words, for a test to print.
package reference
