package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
)

// Regime is a delete distribution of the mix datasets.
type Regime string

// The three delete regimes every mix figure is given for.
const (
	RegimeNone      Regime = "none"
	RegimeClustered Regime = "clustered"
	RegimeUniform   Regime = "uniform"
)

// Regimes lists the delete regimes in report order.
var Regimes = []Regime{RegimeNone, RegimeClustered, RegimeUniform}

// DataSpec describes one generated collection. Two specs with the same
// fields produce the same bytes (gen is deterministic), so a dataset is
// generated once and cached under its Name.
type DataSpec struct {
	Bytes    int64   // target uncompressed input (gen's InputMemorySize), approximate
	Dim      int     // FloatVector dimension
	Segments int     // L1 segments
	Regime   Regime  // delete distribution of the mix plan
	Deletes  float64 // fraction deleted (ignored for RegimeNone)
	Sorted   bool    // segments sorted by pk
	// L0 datasets: L0Deletes delete records in one L0 segment applied to
	// Segments targets of RowsPerSegment rows (Bytes is then ignored).
	L0Deletes      int
	RowsPerSegment int
	CollectionID   int64 // distinct collections for concurrent plans (0 = gen's default)
	// StorageVersion is the segments' storage version (0 = v1, 2 = v2);
	// gen's mix plan then asks for outputs in the same version.
	StorageVersion int64
}

// Name is the dataset's cache directory name.
func (s DataSpec) Name() string {
	n := fmt.Sprintf("d%d-s%d-b%d-%s-%.3f", s.Dim, s.Segments, s.Bytes, s.Regime, s.Deletes)
	if s.Sorted {
		n += "-sorted"
	}
	if s.L0Deletes > 0 {
		n = fmt.Sprintf("l0-d%d-t%d-r%d-del%d", s.Dim, s.Segments, s.RowsPerSegment, s.L0Deletes)
	}
	if s.CollectionID != 0 {
		n += fmt.Sprintf("-c%d", s.CollectionID)
	}
	if s.StorageVersion != 0 {
		n += fmt.Sprintf("-v%d", s.StorageVersion)
	}
	return n
}

// Dataset is a generated collection on a local store plus what the cases
// need from gen.Collection.
type Dataset struct {
	Spec            DataSpec
	Dir             string // local store root
	MixPlan         *datapb.CompactionPlan
	L0Plan          *datapb.CompactionPlan
	Expected        gen.Expected
	InputMemorySize int64 // uncompressed input bytes
	InputLogSize    int64 // stored input bytes
	GenSeconds      float64
}

// meta is the cached form of a Dataset.
type meta struct {
	Spec            DataSpec
	MixPlan, L0Plan []byte
	Expected        gen.Expected
	InputMemorySize int64
	InputLogSize    int64
	GenSeconds      float64
}

// rowBytes measures the uncompressed bytes per row of the gen schema at dim
// by generating a tiny collection.
func rowBytes(ctx context.Context, dim int) (int64, error) {
	dir, err := os.MkdirTemp("", "bench-rowbytes")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	st, err := objstore.NewLocal(dir)
	if err != nil {
		return 0, err
	}
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.Dim, c.L0Segments = 1, 2000, dim, 0
	col, err := gen.Generate(ctx, st, c)
	if err != nil {
		return 0, fmt.Errorf("measuring the row size: %w", err)
	}
	return (col.InputMemorySize + 1999) / 2000, nil
}

// GenConfig turns the spec into a gen.Config.
func (s DataSpec) GenConfig(ctx context.Context) (gen.Config, error) {
	c := gen.DefaultConfig()
	c.Dim, c.Segments, c.Sorted = s.Dim, s.Segments, s.Sorted
	c.ExpiredFraction, c.TTL = 0, 0
	c.CompressPaths = false
	c.StorageVersion = s.StorageVersion
	if s.CollectionID != 0 {
		c.CollectionID = s.CollectionID
	}
	switch s.Regime {
	case RegimeNone:
		c.DeleteFraction = 0
	case RegimeClustered:
		c.DeleteFraction, c.Deletes = s.Deletes, gen.DeleteClustered
	case RegimeUniform:
		c.DeleteFraction, c.Deletes = s.Deletes, gen.DeleteUniform
	default:
		return c, fmt.Errorf("unknown delete regime %q", s.Regime)
	}
	rb, err := rowBytes(ctx, s.Dim)
	if err != nil {
		return c, err
	}
	if s.L0Deletes > 0 {
		c.RowsPerSegment = s.RowsPerSegment
		c.L0Segments, c.L0Deletes, c.L0HitFraction = 1, s.L0Deletes, 0.5
	} else {
		c.L0Segments = 0
		c.RowsPerSegment = int(max(1, s.Bytes/rb/int64(s.Segments)))
	}
	// Milvus flushes insert binlogs at 64 MiB of uncompressed data.
	c.ChunkRows = int(max(1, (64<<20)/rb))
	if c.ChunkRows >= c.RowsPerSegment {
		c.ChunkRows = 0
	}
	return c, nil
}

// Prepare returns the dataset for spec under root, generating it on first
// use.
func Prepare(ctx context.Context, root string, spec DataSpec) (*Dataset, error) {
	dir := filepath.Join(root, spec.Name())
	metaPath := filepath.Join(dir, "meta.json")
	if b, err := os.ReadFile(metaPath); err == nil {
		return decodeMeta(dir, b)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	storeDir := filepath.Join(dir, "store")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, err
	}
	st, err := objstore.NewLocal(storeDir)
	if err != nil {
		return nil, err
	}
	cfg, err := spec.GenConfig(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	col, err := gen.Generate(ctx, st, cfg)
	if err != nil {
		return nil, fmt.Errorf("generating dataset %s: %w", spec.Name(), err)
	}
	m := meta{Spec: spec, Expected: col.Expected, InputMemorySize: col.InputMemorySize,
		InputLogSize: col.InputLogSize, GenSeconds: time.Since(start).Seconds()}
	if m.MixPlan, err = proto.Marshal(col.MixPlan); err != nil {
		return nil, err
	}
	if col.L0Plan != nil {
		if m.L0Plan, err = proto.Marshal(col.L0Plan); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(metaPath, b, 0o644); err != nil {
		return nil, err
	}
	return decodeMeta(dir, b)
}

func decodeMeta(dir string, b []byte) (*Dataset, error) {
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("dataset %s: meta.json: %w", dir, err)
	}
	d := &Dataset{Spec: m.Spec, Dir: filepath.Join(dir, "store"), Expected: m.Expected,
		InputMemorySize: m.InputMemorySize, InputLogSize: m.InputLogSize, GenSeconds: m.GenSeconds}
	d.MixPlan = new(datapb.CompactionPlan)
	if err := proto.Unmarshal(m.MixPlan, d.MixPlan); err != nil {
		return nil, fmt.Errorf("dataset %s: mix plan: %w", dir, err)
	}
	if len(m.L0Plan) > 0 {
		d.L0Plan = new(datapb.CompactionPlan)
		if err := proto.Unmarshal(m.L0Plan, d.L0Plan); err != nil {
			return nil, fmt.Errorf("dataset %s: L0 plan: %w", dir, err)
		}
	}
	return d, nil
}

// Store opens the dataset's local store.
func (d *Dataset) Store() (objstore.Store, error) { return objstore.NewLocal(d.Dir) }

// filledPlan returns a copy of plan with every log key filled in under the
// host's default root path, for code that reads the binlogs itself.
func filledPlan(plan *datapb.CompactionPlan) (*datapb.CompactionPlan, error) {
	plan = proto.Clone(plan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(host.DefaultRootPath, plan); err != nil {
		return nil, err
	}
	return plan, nil
}
