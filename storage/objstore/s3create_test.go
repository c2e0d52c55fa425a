package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
)

// TestS3CreateLostResponse: when the response to the request that stored
// the object is lost, minio-go retries it and the service refuses the
// retry (412, or the multipart upload is gone). Create recognises its own
// object and succeeds; it is not mistaken for someone else's.
func TestS3CreateLostResponse(t *testing.T) {
	const partSize = 5 << 20
	s, ft := faultyMinIOWith(t, func(o *objstore.Options) { o.PartSize = partSize })
	ctx := context.Background()
	for _, n := range []int{3000, 2*partSize + 5} {
		data := payload(n, uint64(n))
		key := fmt.Sprintf("lost/%d", n)
		ft.mu.Lock()
		ft.loseCommits = 1
		ft.mu.Unlock()
		if err := s.Create(ctx, key, bytes.NewReader(data), int64(n)); err != nil {
			t.Fatalf("%d bytes, commit response lost: %v", n, err)
		}
		if ft.loseCommits != 0 {
			t.Fatalf("%d bytes: fault injection not exercised", n)
		}
		if got := get(t, s, key); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: content differs", n)
		}
		// Someone else's object under the key is still a collision.
		err := s.Create(ctx, key, bytes.NewReader(data), int64(n))
		expectExist(t, s, key, err, data)
	}
}

// TestS3CreateUnknownOutcome: when the store becomes unreachable right
// after it stored the object, Create cannot learn the outcome and says so
// with ErrUnknownOutcome, naming the key; the object is there.
func TestS3CreateUnknownOutcome(t *testing.T) {
	s, ft := faultyMinIOWith(t, func(o *objstore.Options) { o.MaxRetries = 2 })
	data := payload(3000, 9)
	ft.mu.Lock()
	ft.loseCommits, ft.downAfterLoss = 1, true
	ft.mu.Unlock()
	err := s.Create(context.Background(), "unsure", bytes.NewReader(data), int64(len(data)))
	ft.mu.Lock()
	ft.down = false
	ft.mu.Unlock()
	if !errors.Is(err, objstore.ErrUnknownOutcome) || !strings.Contains(err.Error(), `"unsure"`) {
		t.Fatalf("Create during an outage: %v, want ErrUnknownOutcome naming the key", err)
	}
	if got := get(t, s, "unsure"); !bytes.Equal(got, data) {
		t.Fatal("the object stored before the outage differs")
	}
}
