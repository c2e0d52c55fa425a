// Package gen writes realistic Milvus collections into an object store: insert data (storage-v1
// binlogs for every field, or storage-v2 column-group Parquet files, or both mixed), deltalogs,
// primary-key stats logs, and the matching datapb.CompactionPlan for a mix and an L0
// compaction. Tests and benchmarks use it to build inputs whose expected compaction result is
// known exactly.
package gen

import (
	"errors"
	"fmt"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// DeleteDistribution says where the deleted rows of a segment sit.
type DeleteDistribution int

const (
	// DeleteUniform deletes rows chosen uniformly at random.
	DeleteUniform DeleteDistribution = iota
	// DeleteClustered deletes contiguous runs of rows, as time-ordered upserts do.
	DeleteClustered
)

func (d DeleteDistribution) String() string {
	switch d {
	case DeleteUniform:
		return "uniform"
	case DeleteClustered:
		return "clustered"
	}
	return fmt.Sprintf("DeleteDistribution(%d)", int(d))
}

// ParseDeleteDistribution reads "uniform" or "clustered".
func ParseDeleteDistribution(s string) (DeleteDistribution, error) {
	switch s {
	case "uniform", "":
		return DeleteUniform, nil
	case "clustered":
		return DeleteClustered, nil
	}
	return 0, fmt.Errorf("gen: unknown delete distribution %q (want uniform or clustered)", s)
}

// Config describes the collection to generate. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	RootPath     string // key prefix inside the store, Milvus's rootPath ("files" by default)
	CollectionID int64
	PartitionID  int64
	Channel      string

	Segments       int               // number of L1 segments
	RowsPerSegment int               // rows in each segment
	ChunkRows      int               // rows per insert-binlog chunk; 0 = one chunk per segment
	PKType         schemapb.DataType // Int64 or VarChar
	Dim            int               // FloatVector dimension
	Sorted         bool              // rows of each segment sorted by primary key (is_sorted)
	DynamicField   bool              // add the "$meta" JSON field
	// BM25 adds a VarChar "text" field of Zipf-distributed words, its SparseFloatVector
	// "text_sparse" (term frequencies by hashed token ID, see SparseRow) and the BM25 function
	// between them, and writes each L1 segment's BM25 stats log (Collection.BM25Logs).
	BM25 bool

	DeleteFraction  float64            // fraction of each segment's rows deleted by its deltalog
	Deletes         DeleteDistribution // where those rows sit
	ExpiredFraction float64            // fraction of rows older than TTL at Now
	TTL             time.Duration      // collection TTL; 0 disables expiry

	L0Segments    int     // L0 segments written for the L0 plan (0 = no L0 plan)
	L0Deletes     int     // delete records per L0 segment
	L0HitFraction float64 // fraction of L0 deletes naming a pk that exists in some target

	MaxSegmentSize int64     // plan max_size in bytes
	Now            time.Time // the plan's start time; rows expire relative to it
	Seed           int64     // all randomness derives from it: same config, same bytes
	CompressPaths  bool      // leave Binlog.log_path empty in plans, as DataCoord sends them

	// StorageVersion is the format of the L1 segments' insert data: 0 or 1 for storage v1
	// (one binlog per field per chunk, Milvus writes 0), 2 for Milvus 2.6 storage v2 (one
	// Parquet file per column group per chunk, Milvus's default split). Stats logs and
	// deltalogs are v1 in both, as in Milvus 2.6.
	StorageVersion int64
	// MixedVersions writes every odd-indexed L1 segment (the 2nd, 4th, ...) in storage v1 and
	// the others in StorageVersion, as a cluster upgraded to 2.6 holds both. It needs
	// StorageVersion 2.
	MixedVersions bool
}

// SegmentVersion returns the storage version Generate writes the L1 segment with index i in:
// 0 (v1) or 2 (v2).
func (c Config) SegmentVersion(i int) int64 {
	if c.StorageVersion != 2 || (c.MixedVersions && i%2 == 1) {
		return 0
	}
	return 2
}

// DefaultConfig returns a small, valid collection: 4 segments of 10,000 rows, Int64 primary key,
// 128-dim vectors, 10% uniform deletes, 10% TTL-expired rows, and one L0 segment.
func DefaultConfig() Config {
	return Config{
		RootPath:        "files",
		CollectionID:    449000000000000001,
		PartitionID:     449000000000000002,
		Channel:         "by-dev-rootcoord-dml_0_449000000000000001v0",
		Segments:        4,
		RowsPerSegment:  10000,
		PKType:          schemapb.DataType_Int64,
		Dim:             128,
		DynamicField:    true,
		DeleteFraction:  0.1,
		Deletes:         DeleteUniform,
		ExpiredFraction: 0.1,
		TTL:             24 * time.Hour,
		L0Segments:      1,
		L0Deletes:       2000,
		L0HitFraction:   0.5,
		MaxSegmentSize:  1342177280, // DataCoord's default: 1024 MiB x expansion rate 1.25
		Now:             time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Seed:            1,
		CompressPaths:   true,
	}
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.Segments < 1 {
		errs = append(errs, fmt.Errorf("segments must be >= 1, got %d", c.Segments))
	}
	if c.RowsPerSegment < 1 {
		errs = append(errs, fmt.Errorf("rows per segment must be >= 1, got %d", c.RowsPerSegment))
	}
	if c.ChunkRows < 0 {
		errs = append(errs, fmt.Errorf("chunk rows must be >= 0, got %d", c.ChunkRows))
	}
	if c.PKType != schemapb.DataType_Int64 && c.PKType != schemapb.DataType_VarChar {
		errs = append(errs, fmt.Errorf("primary key type must be Int64 or VarChar, got %s", c.PKType))
	}
	if c.Dim < 1 || c.Dim > 32768 {
		errs = append(errs, fmt.Errorf("dim must be in [1, 32768], got %d", c.Dim))
	}
	for name, f := range map[string]float64{"delete": c.DeleteFraction, "expired": c.ExpiredFraction, "L0 hit": c.L0HitFraction} {
		if f < 0 || f > 1 {
			errs = append(errs, fmt.Errorf("%s fraction must be in [0, 1], got %g", name, f))
		}
	}
	if c.ExpiredFraction > 0 && c.TTL <= 0 {
		errs = append(errs, errors.New("expired fraction > 0 needs a TTL > 0"))
	}
	if c.L0Segments < 0 || c.L0Deletes < 0 {
		errs = append(errs, errors.New("L0 segments and deletes must be >= 0"))
	}
	if c.MaxSegmentSize <= 0 {
		errs = append(errs, fmt.Errorf("max segment size must be > 0, got %d", c.MaxSegmentSize))
	}
	if c.StorageVersion < 0 || c.StorageVersion > 2 {
		errs = append(errs, fmt.Errorf("storage version must be 0, 1 (v1) or 2 (v2), got %d", c.StorageVersion))
	}
	if c.MixedVersions && c.StorageVersion != 2 {
		errs = append(errs, errors.New("mixed versions need storage version 2"))
	}
	if c.Now.IsZero() {
		errs = append(errs, errors.New("now must be set"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("gen: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
