package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// validSeg is an L1 segment of collection 1 partition 2 with one insert
// binlog per testSchema field (log IDs base+0..5), a stats log (base+10)
// and a deltalog (base+20), each of 100 rows and 1000 bytes.
func validSeg(id, base int64) *datapb.CompactionSegmentBinlogs {
	s := &datapb.CompactionSegmentBinlogs{SegmentID: id, CollectionID: 1, PartitionID: 2, Level: datapb.SegmentLevel_L1}
	for i, f := range testSchema().GetFields() {
		s.FieldBinlogs = append(s.FieldBinlogs, &datapb.FieldBinlog{FieldID: f.GetFieldID(),
			Binlogs: []*datapb.Binlog{{LogID: base + int64(i), EntriesNum: 100, MemorySize: 1000, LogSize: 500}}})
	}
	s.Field2StatslogPaths = []*datapb.FieldBinlog{{FieldID: 100, Binlogs: []*datapb.Binlog{{LogID: base + 10, EntriesNum: 100}}}}
	s.Deltalogs = []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{{LogID: base + 20, EntriesNum: 5}}}}
	return s
}

// validMix merges segments 10 (logs 1000...) and 11 (logs 2000...) into
// segment IDs [5000, 6000) and log IDs [9000, 9100).
func validMix() *datapb.CompactionPlan {
	return &datapb.CompactionPlan{
		PlanID: 7, Type: datapb.CompactionType_MixCompaction, Schema: testSchema(), MaxSize: 1 << 20,
		BeginLogID: 9000, PreAllocatedLogIDs: &datapb.IDRange{Begin: 9000, End: 9100},
		PreAllocatedSegmentIDs: &datapb.IDRange{Begin: 5000, End: 6000},
		SegmentBinlogs:         []*datapb.CompactionSegmentBinlogs{validSeg(10, 1000), validSeg(11, 2000)},
	}
}

// validL0 applies L0 segment 20 (all partitions, deltalog 3000) to
// targets 10 and 11, which carry only their compound stats logs (ID 1),
// with log IDs [9000, 9002).
func validL0() *datapb.CompactionPlan {
	p := &datapb.CompactionPlan{
		PlanID: 8, Type: datapb.CompactionType_Level0DeleteCompaction, Schema: testSchema(),
		BeginLogID: 9000, PreAllocatedLogIDs: &datapb.IDRange{Begin: 9000, End: 9002},
		SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{{SegmentID: 20, CollectionID: 1, PartitionID: -1, Level: datapb.SegmentLevel_L0,
			Deltalogs: []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{{LogID: 3000, EntriesNum: 7}}}}}},
	}
	for _, id := range []int64{10, 11} {
		p.SegmentBinlogs = append(p.SegmentBinlogs, &datapb.CompactionSegmentBinlogs{SegmentID: id, CollectionID: 1, PartitionID: 2,
			Level: datapb.SegmentLevel_L1, Field2StatslogPaths: []*datapb.FieldBinlog{{FieldID: 100, Binlogs: []*datapb.Binlog{{LogID: 1}}}}})
	}
	return p
}

func TestValidateRefuses(t *testing.T) {
	insert := func(p *datapb.CompactionPlan, seg, field int) *datapb.Binlog {
		return p.SegmentBinlogs[seg].FieldBinlogs[field].Binlogs[0]
	}
	for _, c := range []struct {
		name string
		l0   bool
		mut  func(p *datapb.CompactionPlan)
		want string
	}{
		// Range shapes.
		{"log range missing", false, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs = nil }, "pre_allocated_logIDs is missing"},
		{"log range zero", false, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.Begin = 0 }, "pre_allocated_logIDs [0, 9100) has a zero or negative bound"},
		{"log range negative", false, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.Begin = -5 }, "pre_allocated_logIDs [-5, 9100) has a zero or negative bound"},
		{"log range reversed", false, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.End = 8000 }, "pre_allocated_logIDs [9000, 8000) is reversed"},
		{"log range empty", true, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.End = 9000 }, "pre_allocated_logIDs [9000, 9000) is empty"},
		{"segment range missing", false, func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs = nil }, "mix compaction needs output segment IDs: pre_allocated_segmentIDs is missing"},
		{"segment range negative", false, func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs.End = -1 }, "pre_allocated_segmentIDs [5000, -1) has a zero or negative bound"},
		{"segment range reversed", false, func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs.Begin = 7000 }, "pre_allocated_segmentIDs [7000, 6000) is reversed"},
		{"segment range empty", false, func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs.End = 5000 }, "pre_allocated_segmentIDs [5000, 5000) is empty"},
		{"begin log id negative", false, func(p *datapb.CompactionPlan) { p.BeginLogID = -1 }, "begin_logID -1 is negative"},

		// Output ranges holding input IDs.
		{"segment range holds input", false, func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: 11, End: 200_000} },
			"pre_allocated_segmentIDs [11, 200000) holds input segment 11"},
		{"L0 segment range holds input", true, func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: 20, End: 21} },
			"pre_allocated_segmentIDs [20, 21) holds input segment 20"},
		{"log range holds insert log", false, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs = &datapb.IDRange{Begin: 2003, End: 9100} },
			"pre_allocated_logIDs [2003, 9100) holds input log ID 2003 (segment 11 field 101 insert_log logID 2003)"},
		{"log range holds stats log", true, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs = &datapb.IDRange{Begin: 1, End: 10} },
			"pre_allocated_logIDs [1, 10) holds input log ID 1 (segment 10 field 100 stats_log logID 1)"},
		{"log range holds L0 deltalog", true, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs = &datapb.IDRange{Begin: 2999, End: 3001} },
			"pre_allocated_logIDs [2999, 3001) holds input log ID 3000 (segment 20 field 0 delta_log logID 3000)"},
		{"log range holds a path's log ID", false, func(p *datapb.CompactionPlan) {
			p.SegmentBinlogs[1].Deltalogs[0].Binlogs[0] = &datapb.Binlog{LogPath: "files/delta_log/1/2/11/9050"}
		}, `holds input log ID 9050 (segment 11 field 0 delta_log "files/delta_log/1/2/11/9050")`},

		// Ranges too small for every row kept: 12 binlogs of 1000 bytes.
		{"segment range too small", false, func(p *datapb.CompactionPlan) {
			p.MaxSize = 1000
			p.PreAllocatedSegmentIDs.End = 5005
		}, "pre_allocated_segmentIDs [5000, 5005) holds 5 IDs; keeping every input row can take 13 output segments"},
		{"log range too small", false, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.End = 9006 },
			"pre_allocated_logIDs [9000, 9006) holds 6 IDs; keeping every input row can take 7 log IDs"},
		{"log range too small for chunks", false, func(p *datapb.CompactionPlan) {
			p.JsonParams = `{"binlog_max_size": 1000}`
			p.PreAllocatedLogIDs.End = 9050
		}, "pre_allocated_logIDs [9000, 9050) holds 50 IDs; keeping every input row can take 79 log IDs"},
		{"log range too small for Array<Int64> chunks", false, func(p *datapb.CompactionPlan) {
			// The writer counts an Array<Int64> at 8x its memory_size when it
			// cuts chunks: 10 × 1000 + 2 × 8000 bytes -> 27 chunks.
			f := p.Schema.Fields[4]
			f.DataType, f.ElementType = schemapb.DataType_Array, schemapb.DataType_Int64
			p.JsonParams = `{"binlog_max_size": 1000}`
			p.PreAllocatedLogIDs.End = 9100
		}, "pre_allocated_logIDs [9000, 9100) holds 100 IDs; keeping every input row can take 163 log IDs"},
		{"L0 log range too small", true, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.End = 9001 },
			"pre_allocated_logIDs [9000, 9001) holds 1 IDs; keeping every input row can take 2 log IDs"},

		// IDs.
		{"zero segment id", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[0].SegmentID = 0 }, "segment entry 0 has segment ID 0, want > 0"},
		{"negative segment id", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[1].SegmentID = -11 }, "segment entry 1 has segment ID -11, want > 0"},
		{"zero collection id", false, func(p *datapb.CompactionPlan) {
			p.SegmentBinlogs[0].CollectionID, p.SegmentBinlogs[1].CollectionID = 0, 0
		}, "segment 10 has collection ID 0, want > 0"},
		{"negative partition id", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[1].PartitionID = -1 },
			"segment 11 has partition ID -1, want > 0 (or -1 for an L0 segment)"},
		{"L0 target in all partitions", true, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[2].PartitionID = -1 },
			"segment 11 has partition ID -1, want > 0 (or -1 for an L0 segment)"},
		{"L0 other collection", true, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[2].CollectionID = 5 },
			"segment 11 is in collection 5, segment 20 in collection 1"},

		// Log metadata.
		{"negative entries_num", false, func(p *datapb.CompactionPlan) { insert(p, 0, 2).EntriesNum = -1 },
			"segment 10 field 100 insert_log logID 1002: negative entries_num -1"},
		{"negative deltalog entries_num", true, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[0].Deltalogs[0].Binlogs[0].EntriesNum = -3 },
			"segment 20 field 0 delta_log logID 3000: negative entries_num -3"},
		{"negative stats entries_num", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[1].Field2StatslogPaths[0].Binlogs[0].EntriesNum = -1 },
			"segment 11 field 100 stats_log logID 2010: negative entries_num -1"},
		{"negative memory_size", false, func(p *datapb.CompactionPlan) { insert(p, 1, 3).MemorySize = -8 },
			"segment 11 field 101 insert_log logID 2003: negative memory_size -8"},
		{"no log id", false, func(p *datapb.CompactionPlan) { insert(p, 0, 0).LogID = 0 }, "segment 10 field 0 insert_log logID 0: no log_path and logID 0, want > 0"},
		{"negative log id", false, func(p *datapb.CompactionPlan) { insert(p, 0, 0).LogID = -4 }, "segment 10 field 0 insert_log logID -4: no log_path and logID -4, want > 0"},
		{"negative log id with path", false, func(p *datapb.CompactionPlan) {
			*insert(p, 0, 0) = datapb.Binlog{LogID: -4, LogPath: "files/insert_log/1/2/10/0/1000"}
		}, `segment 10 field 0 insert_log "files/insert_log/1/2/10/0/1000": negative logID -4`},
		{"path without log id", false, func(p *datapb.CompactionPlan) {
			*insert(p, 0, 0) = datapb.Binlog{LogPath: "files/insert_log/1/2/10/0/latest"}
		},
			`segment 10 field 0 insert_log "files/insert_log/1/2/10/0/latest": logID is 0 and the path does not end in a log ID`},
		{"path and log id disagree", false, func(p *datapb.CompactionPlan) { insert(p, 0, 0).LogPath = "files/insert_log/1/2/10/0/1001" },
			`segment 10 field 0 insert_log "files/insert_log/1/2/10/0/1001": logID 1000 does not match the path's last element`},

		// Duplicates.
		{"segment twice", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs = append(p.SegmentBinlogs, validSeg(10, 4000)) },
			"segment 10 is listed twice (segment entries 0 and 2)"},
		{"L0 target twice", true, func(p *datapb.CompactionPlan) {
			p.SegmentBinlogs = append(p.SegmentBinlogs, proto.Clone(p.SegmentBinlogs[1]).(*datapb.CompactionSegmentBinlogs))
		}, "segment 10 is listed twice (segment entries 1 and 3)"},
		{"log id twice in a segment", false, func(p *datapb.CompactionPlan) { insert(p, 0, 3).LogID = 1002 },
			"segment 10 lists insert_log ID 1002 twice (logID 1002 and logID 1002)"},
		{"deltalog twice", false, func(p *datapb.CompactionPlan) {
			d := p.SegmentBinlogs[0].Deltalogs[0]
			d.Binlogs = append(d.Binlogs, &datapb.Binlog{LogPath: "files/delta_log/1/2/10/1020"})
		}, `segment 10 lists delta_log ID 1020 twice (logID 1020 and "files/delta_log/1/2/10/1020")`},
		{"object listed by two segments", false, func(p *datapb.CompactionPlan) {
			*insert(p, 1, 2) = datapb.Binlog{LogPath: "other-root/insert_log/1/2/10/100/1002", EntriesNum: 100}
		}, `segment 11 insert_log "other-root/insert_log/1/2/10/100/1002" names object insert_log/1/2/10/100/1002, already listed as segment 10 insert_log logID 1002`},

		// Not supported yet.
		{"plugin context", false, func(p *datapb.CompactionPlan) {
			p.PluginContext = []*commonpb.KeyValuePair{{Key: "cipher.ezID", Value: "3"}, {Key: "cipher.key", Value: "SECRET"}}
		}, `not supported yet: plugin_context (keys ["cipher.ezID" "cipher.key"])`},
		{"struct array fields", false, func(p *datapb.CompactionPlan) {
			p.Schema.StructArrayFields = []*schemapb.StructArrayFieldSchema{{FieldID: 104, Name: "clips"}}
		}, `not supported yet: schema has 1 struct_array_fields (first: 104 "clips")`},
		{"BM25 function", true, func(p *datapb.CompactionPlan) {
			p.Schema.Functions = []*schemapb.FunctionSchema{{Name: "text_bm25", Type: schemapb.FunctionType_BM25, OutputFieldNames: []string{"sparse"}}}
		}, `not supported yet: BM25 function "text_bm25" (outputs [sparse])`},
		{"storage v3 segment", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[1].StorageVersion = 3 },
			"not supported: segment 11 has storage_version 3; this host reads 0 or 1 (storage v1) and 2 (storage v2)"},
		{"storage v3 params", false, func(p *datapb.CompactionPlan) { p.JsonParams = `{"storage_version": 3}` },
			"json_params: storage_version 3 is not supported (this host writes 0 = storage v1 and 2 = storage v2)"},
		{"negative storage version", true, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[0].StorageVersion = -1 },
			"segment 20 has storage_version -1"},
		{"segment field this build does not know", false, func(p *datapb.CompactionPlan) {
			// Field 99, a string: what a newer DataCoord's manifest path would look like.
			p.SegmentBinlogs[0].ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "m/1"))
		}, "not supported: segment 10 carries protobuf fields [99] that this build does not know"},
		{"v2 group with a field outside the schema", false, func(p *datapb.CompactionPlan) {
			p.SegmentBinlogs[0].StorageVersion = 2
			p.SegmentBinlogs[0].FieldBinlogs[0].ChildFields = []int64{0, 1, 777}
		}, "not supported yet: segment 10 column group 0 holds field 777, which the schema does not have"},
		{"field outside the schema", false, func(p *datapb.CompactionPlan) { p.SegmentBinlogs[0].FieldBinlogs[4].FieldID = 999 },
			"not supported yet: segment 10 has insert binlogs of field 999, which the schema does not have"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := validMix()
			if c.l0 {
				p = validL0()
			}
			c.mut(p)
			_, err := Validate(p)
			if !errors.Is(err, ErrInvalidPlan) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v\nwant ErrInvalidPlan containing %q", err, c.want)
			}
			if prefix := fmt.Sprintf("plan %d: ", p.GetPlanID()); !strings.Contains(err.Error(), prefix) {
				t.Fatalf("error %q does not name the plan", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error %q shows a plugin_context value", err)
			}
		})
	}
}

// TestValidateAccepts covers what the rules must let through.
func TestValidateAccepts(t *testing.T) {
	for _, c := range []struct {
		name string
		l0   bool
		mut  func(p *datapb.CompactionPlan)
	}{
		{"mix", false, func(*datapb.CompactionPlan) {}},
		{"L0 with compound stats log 1 in every target", true, func(*datapb.CompactionPlan) {}},
		{"exact worst case", false, func(p *datapb.CompactionPlan) {
			p.MaxSize = 1000
			p.PreAllocatedSegmentIDs.End = 5013
			p.PreAllocatedLogIDs.End = 9000 + 6*(12+13) + 13
		}},
		{"row count caps outputs", false, func(p *datapb.CompactionPlan) {
			// max_size 1: an output per row at most, 200 rows.
			p.MaxSize = 1
			p.PreAllocatedSegmentIDs.End = 5200
			p.PreAllocatedLogIDs.End = 9000 + 6*200 + 200
		}},
		{"full paths", false, func(p *datapb.CompactionPlan) {
			for _, s := range p.SegmentBinlogs {
				for _, fb := range s.FieldBinlogs {
					b := fb.Binlogs[0]
					b.LogPath = fmt.Sprintf("files/insert_log/1/2/%d/%d/%d", s.SegmentID, fb.FieldID, b.LogID)
				}
				b := s.Deltalogs[0].Binlogs[0]
				b.LogPath, b.LogID = fmt.Sprintf("files/delta_log/1/2/%d/%d", s.SegmentID, b.LogID), 0
			}
		}},
		{"dynamic field without binlogs", false, func(p *datapb.CompactionPlan) {
			for _, s := range p.SegmentBinlogs {
				s.FieldBinlogs = s.FieldBinlogs[:5]
			}
		}},
		{"text embedding function", false, func(p *datapb.CompactionPlan) {
			p.Schema.Functions = []*schemapb.FunctionSchema{{Name: "embed", Type: schemapb.FunctionType_TextEmbedding}}
		}},
		{"L0 range below inputs", true, func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs = &datapb.IDRange{Begin: 2, End: 4} }},
		{"L0 on storage v2", true, func(p *datapb.CompactionPlan) {
			p.JsonParams = `{"storage_version": 2}`
			for _, s := range p.SegmentBinlogs {
				s.StorageVersion = 2
			}
		}},
		{"storage v1 by segcore's number", false, func(p *datapb.CompactionPlan) {
			p.JsonParams = `{"storage_version": 1}`
			p.SegmentBinlogs[0].StorageVersion = 1
		}},
		{"v2 and v1 inputs into v2", false, func(p *datapb.CompactionPlan) {
			// Segment 11 as Milvus's default split writes it: group 0 (pk,
			// RowID, Timestamp), group 1 (the other scalars), group 101 (vec).
			p.JsonParams = `{"storage_version": 2}`
			s := p.SegmentBinlogs[1]
			s.StorageVersion = 2
			s.FieldBinlogs = []*datapb.FieldBinlog{
				{FieldID: 0, ChildFields: []int64{100, 0, 1}, Binlogs: []*datapb.Binlog{{LogID: 2000, EntriesNum: 100, MemorySize: 3000,
					LogPath: "files/insert_log/1/2/11/0/2000"}}},
				{FieldID: 1, ChildFields: []int64{102, 103}, Binlogs: []*datapb.Binlog{{LogID: 2001, EntriesNum: 100, MemorySize: 2000}}},
				{FieldID: 101, ChildFields: []int64{101}, Binlogs: []*datapb.Binlog{{LogID: 2002, EntriesNum: 100, MemorySize: 1000}}},
			}
		}},
		{"legacy v2 groups without child fields", false, func(p *datapb.CompactionPlan) {
			s := p.SegmentBinlogs[0]
			s.StorageVersion = 2
			s.FieldBinlogs = []*datapb.FieldBinlog{{FieldID: 0, Binlogs: []*datapb.Binlog{{LogID: 1000, EntriesNum: 100, MemorySize: 6000}}}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := validMix()
			if c.l0 {
				p = validL0()
			}
			c.mut(p)
			if _, err := Validate(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestValidateGeneratedPlans: every plan storage/gen writes (the shapes
// DataCoord sends) validates, mix and L0, across its options.
func TestValidateGeneratedPlans(t *testing.T) {
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, mod := range []func(*gen.Config){
		func(*gen.Config) {},
		func(c *gen.Config) { c.PKType = schemapb.DataType_VarChar; c.Sorted = true },
		func(c *gen.Config) { c.CompressPaths = false; c.DynamicField = false },
		func(c *gen.Config) { c.MaxSegmentSize = 1 }, // an output per row
		func(c *gen.Config) { c.MaxSegmentSize = 2000; c.ChunkRows = 7; c.Segments = 5 },
		func(c *gen.Config) { c.Segments = 1; c.L0Segments = 3; c.TTL, c.ExpiredFraction = 0, 0 },
	} {
		cfg := gen.DefaultConfig()
		cfg.RootPath = fmt.Sprintf("gen%d", i)
		cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.Dim, cfg.L0Deletes = 3, 300, 100, 4, 50
		mod(&cfg)
		col, err := gen.Generate(context.Background(), store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*datapb.CompactionPlan{col.MixPlan, col.L0Plan} {
			if p == nil {
				continue
			}
			if _, err := Validate(p); err != nil {
				t.Errorf("config %d: %s plan: %v", i, p.GetType(), err)
			}
		}
	}
}

// FuzzValidate: any decodable plan is either valid or refused with
// ErrInvalidPlan, never a panic.
func FuzzValidate(f *testing.F) {
	for _, p := range []*datapb.CompactionPlan{validMix(), validL0()} {
		b, err := proto.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		plan := &datapb.CompactionPlan{}
		if proto.Unmarshal(b, plan) != nil {
			return
		}
		if _, err := Validate(plan); err != nil && !errors.Is(err, ErrInvalidPlan) {
			t.Fatalf("error %v does not wrap ErrInvalidPlan", err)
		}
	})
}
