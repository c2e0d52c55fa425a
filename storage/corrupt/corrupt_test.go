package corrupt

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestMark(t *testing.T) {
	base := fmt.Errorf("binlog %q: %w", "files/insert_log/1/2/3/100/7", io.ErrUnexpectedEOF)
	err := Mark(base)
	if err.Error() != base.Error() {
		t.Fatalf("message %q, want %q", err, base)
	}
	if !errors.Is(err, Err) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%v: errors.Is Err %v, wrapped cause %v", err, errors.Is(err, Err), errors.Is(err, io.ErrUnexpectedEOF))
	}
	if Mark(err) != err {
		t.Fatal("marking a marked error wrapped it again")
	}
	if wrapped := fmt.Errorf("segment 100: %w", err); !errors.Is(wrapped, Err) {
		t.Fatal("the mark does not survive wrapping")
	}
	if Mark(nil) != nil {
		t.Fatal("Mark(nil) is not nil")
	}
	if errors.Is(base, Err) {
		t.Fatal("an unmarked error matches Err")
	}
}
