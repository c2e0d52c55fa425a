package abi

import (
	"os"
	"strings"
	"testing"
)

// jsonBlock returns the first ```json block after heading in ABI.md.
func jsonBlock(t *testing.T, spec, heading string) []byte {
	t.Helper()
	_, rest, ok := strings.Cut(spec, heading)
	if !ok {
		t.Fatalf("ABI.md has no heading %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```json\n")
	if !ok {
		t.Fatalf("no json block after %q", heading)
	}
	block, _, _ := strings.Cut(rest, "```")
	return []byte(block)
}

// TestSpecExamples keeps the examples in ABI.md valid.
func TestSpecExamples(t *testing.T) {
	b, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	if _, err := ParseManifest(jsonBlock(t, spec, "## 6. Manifest")); err != nil {
		t.Errorf("manifest example: %v", err)
	}
	task, err := ParseTask(jsonBlock(t, spec, "## 7. Task"))
	if err != nil {
		t.Fatalf("task example: %v", err)
	}
	// max_batch_bytes of the example is the size of a full pk+ts+size batch.
	n, _ := EncodedSize(task.BatchRows, benchColumns(task.BatchRows))
	if uint64(n) != task.MaxBatchBytes {
		t.Errorf("task example max_batch_bytes %d, a full batch is %d", task.MaxBatchBytes, n)
	}
	// The worked example of section 5.6.
	h := BatchHeader{Kind: BatchRows, Rows: 3}
	cols := benchColumns(3)
	buf, _ := Encode(h, cols)
	d, _ := DecodeBatch(buf)
	if len(buf) != 192 || le.Uint32(buf[HeaderSize+16:]) != 128 || le.Uint32(buf[HeaderSize+ColumnEntrySize+16:]) != 152 ||
		le.Uint32(buf[HeaderSize+2*ColumnEntrySize+16:]) != 176 || d.RowSizes() == nil {
		t.Errorf("worked example layout differs from ABI.md 5.6")
	}
	for _, name := range AllowedWASIImports {
		if !strings.Contains(spec, "`"+name+"`") {
			t.Errorf("ABI.md does not list WASI import %s", name)
		}
	}
}
