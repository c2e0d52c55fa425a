package milvuspath_test

import (
	"fmt"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

func ExampleParse() {
	key := milvuspath.InsertLog("files", 449, 450, 451, 100, 7)
	fmt.Println(key)
	k, err := milvuspath.Parse(key)
	fmt.Println(k.Kind, k.Root, k.SegmentID, k.FieldID, k.LogID, err)

	_, err = milvuspath.Parse("files/index_files/1/2/3/4/5")
	fmt.Println(err)
	// Output:
	// files/insert_log/449/450/451/100/7
	// insert_log files 451 100 7 <nil>
	// milvuspath: key "files/index_files/1/2/3/4/5" is not a Milvus log key: no insert_log, delta_log, stats_log or bm25_stats element
}

func ExampleFillSegment() {
	seg := &datapb.CompactionSegmentBinlogs{
		CollectionID: 1, PartitionID: 2, SegmentID: 3,
		Deltalogs: []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{{LogID: 44}}}},
	}
	if err := milvuspath.FillSegment("files", seg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(seg.Deltalogs[0].Binlogs[0].LogPath)
	// Output:
	// files/delta_log/1/2/3/44
}
