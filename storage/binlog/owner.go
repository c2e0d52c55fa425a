package binlog

import (
	"fmt"

	"github.com/compacthost/compacthost/storage/corrupt"
)

// Owner is the collection, partition and segment a plan lists a binlog
// under. Milvus writes the same IDs into every binlog's descriptor (insert
// logs and deltalogs alike), so a descriptor that names others is an object
// copied, misplaced or damaged.
type Owner struct {
	CollectionID, PartitionID, SegmentID int64
}

// CheckOwner returns an error marked corrupt.Err naming the first of the
// collection, partition and segment IDs where the descriptor and o differ.
func (d Descriptor) CheckOwner(o Owner) error {
	for _, id := range []struct {
		name      string
		got, want int64
	}{
		{"collection", d.CollectionID, o.CollectionID},
		{"partition", d.PartitionID, o.PartitionID},
		{"segment", d.SegmentID, o.SegmentID},
	} {
		if id.got != id.want {
			return corrupt.Mark(fmt.Errorf("descriptor says %s %d, plan says %d", id.name, id.got, id.want))
		}
	}
	return nil
}
