package safezstd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
)

func TestBoundedDecode(t *testing.T) {
	orig, _ := compress.GetCodec(compress.Codecs.Zstd)
	Register()
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	src := bytes.Repeat([]byte("milvus binlog page "), 1000)
	enc := c.EncodeLevel(nil, src, 3)
	if want := orig.EncodeLevel(nil, src, 3); !bytes.Equal(enc, want) {
		t.Fatal("encoding differs from arrow-go's codec")
	}
	out, err := compress.Decode(c, make([]byte, len(src)), enc)
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("round trip: %v", err)
	}
	// A page header announcing fewer bytes than the frame holds is refused
	// before any allocation of the frame's size.
	_, err = compress.Decode(c, make([]byte, 100), enc)
	if err == nil || !strings.Contains(err.Error(), "page header announced 100") {
		t.Fatalf("oversized frame: %v", err)
	}
	if _, err := compress.Decode(c, make([]byte, 10), []byte("garbage!")); err == nil {
		t.Fatal("garbage decoded")
	}
}
