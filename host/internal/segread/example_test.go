package segread_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// Stream a generated segment in batches of 400 rows, then read its deletes.
func Example() {
	dir, err := os.MkdirTemp("", "segread-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := objstore.NewLocal(dir)
	if err != nil {
		log.Fatal(err)
	}
	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.Dim, cfg.L0Segments = 1, 1000, 600, 4, 0
	col, err := gen.Generate(context.Background(), store, cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	seg := col.Segments[0]
	r, err := segread.Open(ctx, store, col.Schema, seg, segread.Options{BatchRows: 400})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println("rows:", r.NumRows())
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("batch at row %d: %d rows, %d columns\n", b.FirstRow, b.Rows, len(b.Columns))
		b.Release()
	}
	d, err := segread.ReadDeletes(ctx, store, cfg.PKType, seg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deletes:", d.Len())
	// Output:
	// rows: 1000
	// batch at row 0: 400 rows, 9 columns
	// batch at row 400: 200 rows, 9 columns
	// batch at row 600: 400 rows, 9 columns
	// deletes: 102
}
