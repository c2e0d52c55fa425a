package statslog

import (
	"strconv"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func BenchmarkBlockedAddInt64(b *testing.B) {
	bl, _ := NewBuilder(100, schemapb.DataType_Int64, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bl.AddInt64(int64(i))
	}
}

// BenchmarkBlockedTestInt64 looks up keys inside the pk range, half of them
// present, in a 1Mi-key filter (2 MiB, larger than L2): the L0 inner loop.
func BenchmarkBlockedTestInt64(b *testing.B) {
	const n = 1 << 20
	bl, _ := NewBuilder(100, schemapb.DataType_Int64, n)
	for i := int64(0); i < n; i++ {
		bl.AddInt64(2 * i)
	}
	s, _ := bl.Finish()
	b.ResetTimer()
	hits := 0
	for i := 0; i < b.N; i++ {
		if s.MayContainInt64(int64(i*7919) % (2 * n)) {
			hits++
		}
	}
	b.ReportMetric(float64(hits)/float64(b.N), "hit-ratio")
}

func BenchmarkBlockedTestVarChar(b *testing.B) {
	const n = 1 << 16
	keys := make([]string, n)
	bl, _ := NewBuilder(100, schemapb.DataType_VarChar, n)
	for i := range keys {
		keys[i] = "pk-" + strconv.Itoa(i*7919)
		bl.AddVarChar(keys[i])
	}
	s, _ := bl.Finish()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.MayContainVarChar(keys[i%n])
	}
}
