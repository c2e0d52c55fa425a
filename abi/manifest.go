package abi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Compaction types a strategy can handle (Manifest.Handles, Task.Type).
const (
	CompactionMix = "mix"
	CompactionL0  = "l0"
)

// Field selectors for Manifest.Fields. Besides these keywords a selector may
// be a decimal field ID ("101") or a field name from the collection schema.
const (
	FieldPK      = "pk"    // the primary key field, whatever its ID
	FieldTS      = "ts"    // the row timestamp (system field 1)
	FieldRowID   = "rowid" // the row ID (system field 0)
	FieldRowSize = "size"  // the synthetic row-size column (field ID -1)
)

// Synthetic and system field IDs.
const (
	FieldIDRowSize   int64 = -1 // host-computed uncompressed row size, TypeUint32
	FieldIDRowID     int64 = 0
	FieldIDTimestamp int64 = 1
)

// DefaultFields is what a manifest without "fields" receives.
var DefaultFields = []string{FieldPK, FieldTS, FieldRowSize}

// Manifest is what a strategy declares about itself through
// compact_v1_manifest. Unknown JSON fields are ignored.
type Manifest struct {
	ABI       int      `json:"abi"`                  // must be 1
	Name      string   `json:"name"`                 // [a-z0-9][a-z0-9_-]{0,63}
	Version   string   `json:"version"`              // [0-9A-Za-z.+-]{1,64}, e.g. "1.2.0"
	Handles   []string `json:"handles"`              // compaction types: "mix", "l0"
	Fields    []string `json:"fields,omitempty"`     // columns to receive; default DefaultFields
	MinMemory uint64   `json:"min_memory,omitempty"` // bytes of linear memory the strategy needs at least
	BatchRows int      `json:"batch_rows,omitempty"` // preferred rows per batch; 0 = host default
}

// ParseManifest decodes and validates a manifest document.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("abi: manifest is not valid JSON: %w", err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Validate checks a manifest against the v1 rules.
func (m *Manifest) Validate() error {
	if m.ABI != Version {
		return fmt.Errorf("abi: manifest declares abi %d, this host speaks %d", m.ABI, Version)
	}
	if !validName(m.Name) {
		return fmt.Errorf("abi: manifest name %q must match [a-z0-9][a-z0-9_-]{0,63}", m.Name)
	}
	if !validVersion(m.Version) {
		return fmt.Errorf("abi: manifest %s: version %q must be 1-64 chars of [0-9A-Za-z.+-]", m.Name, m.Version)
	}
	if len(m.Handles) == 0 {
		return fmt.Errorf("abi: manifest %s: handles is empty", m.Name)
	}
	for _, h := range m.Handles {
		if h != CompactionMix && h != CompactionL0 {
			return fmt.Errorf("abi: manifest %s: unknown compaction type %q in handles (want %q or %q)", m.Name, h, CompactionMix, CompactionL0)
		}
	}
	for _, f := range m.Fields {
		if !validSelector(f) {
			return fmt.Errorf("abi: manifest %s: field selector %q is not pk/ts/rowid/size, a field ID or a field name", m.Name, f)
		}
	}
	if m.BatchRows < 0 || m.BatchRows > MaxBatchRows {
		return fmt.Errorf("abi: manifest %s: batch_rows %d out of range [0, %d]", m.Name, m.BatchRows, MaxBatchRows)
	}
	return nil
}

// HandlesType reports whether the manifest lists the compaction type t.
func (m *Manifest) HandlesType(t string) bool {
	for _, h := range m.Handles {
		if h == t {
			return true
		}
	}
	return false
}

// FieldSelectors returns Fields, or DefaultFields when Fields is empty.
func (m *Manifest) FieldSelectors() []string {
	if len(m.Fields) == 0 {
		return DefaultFields
	}
	return m.Fields
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func validVersion(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

func validSelector(s string) bool {
	switch s {
	case FieldPK, FieldTS, FieldRowID, FieldRowSize, "$meta":
		return true
	}
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return !strings.HasPrefix(s, "-") && !strings.HasPrefix(s, "+")
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Segment roles in a task.
const (
	RoleInput  = "input"  // mix: rows arrive as batches, its own deletes as delete batches
	RoleL0     = "l0"     // L0 task: a source of delete records only
	RoleTarget = "target" // L0 task: a segment delete records may be routed to
)

// Segment describes one segment of a task. Its index in Task.Segments is the
// segment index used in batches and decisions.
type Segment struct {
	ID      int64  `json:"id"`
	Level   string `json:"level,omitempty"` // "L0", "L1", "L2"
	Role    string `json:"role"`            // RoleInput, RoleL0 or RoleTarget
	Rows    uint64 `json:"rows"`            // rows the host will deliver (< 2^32)
	Deletes uint64 `json:"deletes"`         // delete records the host will deliver
	Sorted  bool   `json:"sorted"`          // rows are delivered in ascending pk order
	// PKMin and PKMax bound the segment's primary keys when the host knows
	// them (targets of an L0 task). Int64 keys are written in decimal.
	PKMin *string `json:"pk_min,omitempty"`
	PKMax *string `json:"pk_max,omitempty"`
}

// PKRangeInt64 returns the segment's int64 primary-key bounds, if present
// and well formed.
func (s *Segment) PKRangeInt64() (lo, hi int64, ok bool) {
	if s.PKMin == nil || s.PKMax == nil {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseInt(*s.PKMin, 10, 64)
	hi, err2 := strconv.ParseInt(*s.PKMax, 10, 64)
	return lo, hi, err1 == nil && err2 == nil
}

// ColumnInfo describes one column of every rows batch, in batch order.
type ColumnInfo struct {
	FieldID  int64  `json:"field_id"`
	Name     string `json:"name"`
	Type     Type   `json:"type"`                // ABI type code, as its name ("int64", ...)
	Width    uint32 `json:"width,omitempty"`     // bytes per row for "fixed"
	Nullable bool   `json:"nullable,omitempty"`  // the field is nullable in the schema
	DataType int32  `json:"data_type,omitempty"` // Milvus schemapb.DataType, informational
}

// Task is the JSON document passed to compact_v1_begin.
type Task struct {
	ABI             int          `json:"abi"` // must be 1
	PlanID          int64        `json:"plan_id"`
	Type            string       `json:"type"` // CompactionMix or CompactionL0
	CollectionID    int64        `json:"collection_id,omitempty"`
	PartitionID     int64        `json:"partition_id,omitempty"`
	PKFieldID       int64        `json:"pk_field_id"`
	PKType          Type         `json:"pk_type"` // TypeInt64 or TypeString
	Segments        []Segment    `json:"segments"`
	Columns         []ColumnInfo `json:"columns"`            // rows-batch columns, in order
	CollectionTTLNs int64        `json:"collection_ttl_ns"`  // 0 = no TTL
	NowMs           int64        `json:"now_ms"`             // plan start, Unix milliseconds
	MaxSize         int64        `json:"max_size"`           // max bytes per output segment (sum of row sizes)
	MaxRows         int64        `json:"max_rows,omitempty"` // max rows per output segment, 0 = no limit
	MaxOutputs      uint32       `json:"max_outputs"`        // output ids must be < this
	MemoryGrant     uint64       `json:"memory_grant"`       // linear-memory cap in bytes
	BatchRows       int          `json:"batch_rows"`         // max rows per batch
	MaxBatchBytes   uint64       `json:"max_batch_bytes"`    // max encoded size of any batch
}

// MaxBatchRows bounds batch_rows in manifests and tasks.
const MaxBatchRows = 1 << 20

// ParseTask decodes and validates a task document.
func ParseTask(b []byte) (*Task, error) {
	t := new(Task)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("abi: task is not valid JSON: %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// Validate checks a task against the v1 rules.
func (t *Task) Validate() error {
	if t.ABI != Version {
		return fmt.Errorf("abi: task %d declares abi %d, want %d", t.PlanID, t.ABI, Version)
	}
	if t.Type != CompactionMix && t.Type != CompactionL0 {
		return fmt.Errorf("abi: task %d: unknown compaction type %q", t.PlanID, t.Type)
	}
	if t.PKType != TypeInt64 && t.PKType != TypeString {
		return fmt.Errorf("abi: task %d: pk_type %s, want int64 or string", t.PlanID, t.PKType)
	}
	if len(t.Segments) == 0 {
		return fmt.Errorf("abi: task %d has no segments", t.PlanID)
	}
	if len(t.Segments) > math.MaxInt32 {
		return fmt.Errorf("abi: task %d has too many segments", t.PlanID)
	}
	for i := range t.Segments {
		s := &t.Segments[i]
		switch s.Role {
		case RoleInput, RoleL0, RoleTarget:
		default:
			return fmt.Errorf("abi: task %d: segment %d (id %d) has unknown role %q", t.PlanID, i, s.ID, s.Role)
		}
		if s.Rows > math.MaxUint32 {
			return fmt.Errorf("abi: task %d: segment %d (id %d) has %d rows, v1 allows at most 2^32-1", t.PlanID, i, s.ID, s.Rows)
		}
		if s.Deletes > math.MaxUint32 {
			return fmt.Errorf("abi: task %d: segment %d (id %d) has %d deletes, v1 allows at most 2^32-1", t.PlanID, i, s.ID, s.Deletes)
		}
	}
	seen := make(map[int64]bool, len(t.Columns))
	for i, c := range t.Columns {
		if seen[c.FieldID] {
			return fmt.Errorf("abi: task %d: column %d repeats field %d", t.PlanID, i, c.FieldID)
		}
		seen[c.FieldID] = true
		if err := checkColumnType(c.Type, c.Width); err != nil {
			return fmt.Errorf("abi: task %d: column %d (field %d): %w", t.PlanID, i, c.FieldID, err)
		}
	}
	if t.MemoryGrant == 0 {
		return fmt.Errorf("abi: task %d: memory_grant is 0", t.PlanID)
	}
	if t.BatchRows <= 0 || t.BatchRows > MaxBatchRows {
		return fmt.Errorf("abi: task %d: batch_rows %d out of range [1, %d]", t.PlanID, t.BatchRows, MaxBatchRows)
	}
	if t.MaxSize < 0 || t.MaxRows < 0 || t.CollectionTTLNs < 0 {
		return fmt.Errorf("abi: task %d: max_size, max_rows and collection_ttl_ns must not be negative", t.PlanID)
	}
	return nil
}

// ColumnIndex returns the position of field id among the rows-batch columns.
func (t *Task) ColumnIndex(id int64) (int, bool) {
	for i, c := range t.Columns {
		if c.FieldID == id {
			return i, true
		}
	}
	return -1, false
}

// TotalDeletes is the number of delete records the host will deliver.
func (t *Task) TotalDeletes() uint64 {
	var n uint64
	for _, s := range t.Segments {
		n += s.Deletes
	}
	return n
}

var errWidth = errors.New("fixed columns need a width > 0")

func checkColumnType(ty Type, width uint32) error {
	if !ty.Valid() {
		return fmt.Errorf("unknown type code %d", uint8(ty))
	}
	if ty == TypeFixed && width == 0 {
		return errWidth
	}
	return nil
}
