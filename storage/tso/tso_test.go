package tso

import (
	"testing"
	"time"
)

func TestComposeRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 123e6, time.UTC)
	ts := Compose(now.UnixMilli(), 77)
	if got := Physical(ts); got != now.UnixMilli() {
		t.Fatalf("Physical = %d, want %d", got, now.UnixMilli())
	}
	if got := Logical(ts); got != 77 {
		t.Fatalf("Logical = %d, want 77", got)
	}
	if !Time(ts).Equal(now) {
		t.Fatalf("Time = %v, want %v", Time(ts), now)
	}
	if !Valid(ts) || Valid(5) {
		t.Fatal("Valid disagrees with the 2019..9999 window")
	}
	if Compose(1, 1<<LogicalBits) != Compose(1, 0) {
		t.Fatal("logical part must be masked to 18 bits")
	}
}

func TestExpiredBoundary(t *testing.T) {
	ttl := time.Hour
	nowMs := int64(1_800_000_000_000)
	row := Compose(nowMs-ttl.Milliseconds(), 5)
	if !Expired(row, nowMs, ttl) {
		t.Fatal("age == TTL must count as expired")
	}
	if Expired(Compose(nowMs-ttl.Milliseconds()+1, 0), nowMs, ttl) {
		t.Fatal("age one millisecond under the TTL must not expire")
	}
	if Expired(Compose(0, 0), nowMs, 0) {
		t.Fatal("TTL 0 disables expiry")
	}
}
