// Package milvuspath builds and parses the object keys of Milvus storage V1
// logs under a root path (milvus-formats.md §9.1):
//
//	{root}/insert_log/{coll}/{part}/{seg}/{field}/{logID}
//	{root}/delta_log/{coll}/{part}/{seg}/{logID}          (no field level)
//	{root}/stats_log/{coll}/{part}/{seg}/{pkField}/{logID}
//	{root}/bm25_stats/{coll}/{part}/{seg}/{field}/{logID}
//
// IDs are non-negative int64 values written in decimal. The root is joined
// like path.Join: "" gives keys without a prefix, "files/" and "files" give
// the same keys. DataCoord sends compaction inputs with log_path empty and
// only logID set; [FillSegment] and [FillPlan] rebuild the paths.
package milvuspath

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Kind is the kind of a log object.
type Kind int

// Log kinds.
const (
	KindInsert Kind = iota + 1 // insert binlog, one per field per chunk
	KindDelta                  // deltalog, per segment
	KindStats                  // primary-key stats log
	KindBM25                   // BM25 stats log
)

// Directory names of the kinds, as Milvus writes them.
const (
	InsertLogDir = "insert_log"
	DeltaLogDir  = "delta_log"
	StatsLogDir  = "stats_log"
	BM25LogDir   = "bm25_stats"
)

var kindDirs = map[Kind]string{
	KindInsert: InsertLogDir,
	KindDelta:  DeltaLogDir,
	KindStats:  StatsLogDir,
	KindBM25:   BM25LogDir,
}

// String returns the directory name of the kind ("insert_log", ...).
func (k Kind) String() string {
	if d, ok := kindDirs[k]; ok {
		return d
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// HasField reports whether keys of this kind have a field ID level (all
// but deltalogs).
func (k Kind) HasField() bool { return k != KindDelta }

func kindOf(dir string) (Kind, bool) {
	for k, d := range kindDirs {
		if d == dir {
			return k, true
		}
	}
	return 0, false
}

// Key is a parsed log key.
type Key struct {
	Kind         Kind
	Root         string // cleaned root path; "" when the key has no prefix
	CollectionID int64
	PartitionID  int64
	SegmentID    int64
	FieldID      int64 // 0 for KindDelta
	LogID        int64
}

// String builds the object key.
func (k Key) String() string {
	ids := []int64{k.CollectionID, k.PartitionID, k.SegmentID}
	if k.Kind.HasField() {
		ids = append(ids, k.FieldID)
	}
	ids = append(ids, k.LogID)
	elems := make([]string, 0, 2+len(ids))
	elems = append(elems, k.Root, k.Kind.String())
	for _, id := range ids {
		elems = append(elems, strconv.FormatInt(id, 10))
	}
	return path.Join(elems...)
}

// InsertLog returns the key of an insert binlog. For a storage-v2 column-group
// file pass the group ID as field: Milvus builds both with the same pattern
// (metautil.BuildInsertLogPath), the 4th ID slot holding the group ID, which
// for vector and Text groups equals the field ID (milvus-storage-v2.md §2).
func InsertLog(root string, coll, part, seg, field, logID int64) string {
	return Key{KindInsert, root, coll, part, seg, field, logID}.String()
}

// DeltaLog returns the key of a deltalog (deltalogs have no field level).
func DeltaLog(root string, coll, part, seg, logID int64) string {
	return Key{KindDelta, root, coll, part, seg, 0, logID}.String()
}

// StatsLog returns the key of a primary-key stats log; field is the
// primary-key field ID.
func StatsLog(root string, coll, part, seg, field, logID int64) string {
	return Key{KindStats, root, coll, part, seg, field, logID}.String()
}

// BM25Log returns the key of a BM25 stats log.
func BM25Log(root string, coll, part, seg, field, logID int64) string {
	return Key{KindBM25, root, coll, part, seg, field, logID}.String()
}

// SegmentPrefix returns the prefix, ending in "/", under which all logs of
// one kind of one segment live; use it with a store's List.
func SegmentPrefix(root string, kind Kind, coll, part, seg int64) string {
	return path.Join(root, kind.String(), strconv.FormatInt(coll, 10),
		strconv.FormatInt(part, 10), strconv.FormatInt(seg, 10)) + "/"
}

// Parse splits a log key into its kind, root and IDs. It accepts exactly
// the keys the builders produce (so Parse(k).String() == k), and returns an
// error naming the key and the problem for anything else.
func Parse(key string) (Key, error) {
	if key == "" {
		return Key{}, fmt.Errorf("milvuspath: empty key")
	}
	if path.Clean(key) != key {
		return Key{}, fmt.Errorf("milvuspath: key %q is not a clean slash-separated path", key)
	}
	segs := strings.Split(key, "/")
	// The kind directory is the last element naming a kind: IDs are
	// digits, so a kind name in the root can never be confused with it.
	i := len(segs) - 1
	var kind Kind
	for ; i >= 0; i-- {
		if k, ok := kindOf(segs[i]); ok {
			kind = k
			break
		}
	}
	if i < 0 {
		return Key{}, fmt.Errorf("milvuspath: key %q is not a Milvus log key: no %s, %s, %s or %s element",
			key, InsertLogDir, DeltaLogDir, StatsLogDir, BM25LogDir)
	}
	names := []string{"collection", "partition", "segment", "field", "log"}
	if !kind.HasField() {
		names = []string{"collection", "partition", "segment", "log"}
	}
	ids := segs[i+1:]
	if len(ids) != len(names) {
		return Key{}, fmt.Errorf("milvuspath: %s key %q has %d elements after %s, want %d (%s IDs)",
			kind, key, len(ids), kind, len(names), strings.Join(names, "/"))
	}
	vals := make([]int64, len(ids))
	for j, s := range ids {
		v, err := parseID(s)
		if err != nil {
			return Key{}, fmt.Errorf("milvuspath: %s key %q: bad %s ID %q: %v", kind, key, names[j], s, err)
		}
		vals[j] = v
	}
	k := Key{Kind: kind, Root: strings.Join(segs[:i], "/"), CollectionID: vals[0], PartitionID: vals[1], SegmentID: vals[2]}
	if i == 1 && segs[0] == "" {
		k.Root = "/" // key "/insert_log/..."
	}
	if kind.HasField() {
		k.FieldID, k.LogID = vals[3], vals[4]
	} else {
		k.LogID = vals[3]
	}
	return k, nil
}

// parseID accepts canonical non-negative decimal int64s only ("0", "42";
// not "042", "+1", "-1").
func parseID(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a non-negative decimal integer")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("leading zero")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("out of int64 range")
	}
	return v, nil
}
