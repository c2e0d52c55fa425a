package segwrite

import "fmt"

// IDRange hands out IDs from a half-open range [Next, End), such as a
// plan's pre_allocated_segmentIDs or pre_allocated_logIDs. It is not safe
// for concurrent use.
type IDRange struct{ Next, End int64 }

// Take returns the first of n consecutive IDs and advances Next past them.
// Running out of IDs is an error naming the range; the range is then left
// unchanged.
func (r *IDRange) Take(n int) (first int64, err error) {
	if r == nil {
		return 0, fmt.Errorf("segwrite: no ID range")
	}
	if n < 0 {
		return 0, fmt.Errorf("segwrite: cannot take %d IDs", n)
	}
	if left := r.End - r.Next; r.Next > r.End || int64(n) > left {
		return 0, fmt.Errorf("segwrite: ID range [%d, %d) exhausted: %d IDs needed, %d left", r.Next, r.End, n, max(left, 0))
	}
	first = r.Next
	r.Next += int64(n)
	return first, nil
}
