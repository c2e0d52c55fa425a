package pipeline

import (
	"context"
	"io"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/compacthost/compacthost/host/internal/segread"
)

// feeder delivers batches in the feeding order: with sorted inputs the
// next batch of the segment whose last delivered pk is smallest (ties to
// the lower index; a segment with nothing delivered first); otherwise the
// segments one after another in plan order. Each segment has a reader
// goroutine reading ahead into a one-batch channel (unsorted: one at a
// time, so only the current and the next segment are open).
type feeder struct {
	ctx    context.Context
	chs    []chan *segread.Batch
	done   []bool
	seen   []bool   // a batch of the segment was delivered
	lastI  []int64  // last delivered pk per segment (Int64 keys)
	lastS  []string // last delivered pk per segment (VarChar keys)
	sorted bool
	pkID   int64
	wg     sync.WaitGroup
	quit   chan struct{}
}

func newFeeder(ctx context.Context, fail *failure, readers []*segread.Reader, sorted bool, pkID int64) *feeder {
	f := &feeder{ctx: ctx, chs: make([]chan *segread.Batch, len(readers)), done: make([]bool, len(readers)),
		seen: make([]bool, len(readers)), lastI: make([]int64, len(readers)), lastS: make([]string, len(readers)), sorted: sorted, pkID: pkID, quit: make(chan struct{})}
	for i := range readers {
		f.chs[i] = make(chan *segread.Batch, 1)
	}
	read := func(i int) bool {
		defer close(f.chs[i])
		for {
			b, err := readers[i].Next(ctx)
			if err == io.EOF {
				return true
			}
			if err != nil {
				if ctx.Err() == nil { // else the driver reports why the run stopped
					fail.set(stageErr("read", err))
				}
				return false
			}
			select {
			case f.chs[i] <- b:
			case <-f.quit:
				b.Release()
				return false
			case <-ctx.Done():
				b.Release()
				return false
			}
		}
	}
	if sorted {
		for i := range readers {
			f.wg.Add(1)
			go func() { defer f.wg.Done(); read(i) }()
		}
	} else {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for i := range readers {
				if !read(i) {
					for _, ch := range f.chs[i+1:] {
						close(ch)
					}
					return
				}
			}
		}()
	}
	return f
}

// next returns the next batch and its segment, or a nil batch at the end.
func (f *feeder) next() (int, *segread.Batch, error) {
	for {
		i := f.pick()
		if i < 0 {
			return 0, nil, nil
		}
		select {
		case b, ok := <-f.chs[i]:
			if !ok {
				f.done[i] = true
				if err := f.ctx.Err(); err != nil {
					return 0, nil, context.Cause(f.ctx)
				}
				continue
			}
			f.seen[i] = true
			switch a := b.Columns[f.pkID].(type) {
			case *array.Int64:
				if a.Len() > 0 {
					f.lastI[i] = a.Value(a.Len() - 1)
				}
			case *array.String:
				if a.Len() > 0 {
					f.lastS[i] = strings.Clone(a.Value(a.Len() - 1))
				}
			}
			return i, b, nil
		case <-f.ctx.Done():
			return 0, nil, context.Cause(f.ctx)
		}
	}
}

func (f *feeder) pick() int {
	best := -1
	for i := range f.chs {
		if f.done[i] {
			continue
		}
		if !f.sorted {
			return i
		}
		if !f.seen[i] {
			return i
		}
		if best < 0 || f.lessLast(i, best) {
			best = i
		}
	}
	return best
}

// lessLast compares the last delivered pks of segments i and j.
func (f *feeder) lessLast(i, j int) bool {
	if f.lastS[i] != f.lastS[j] {
		return f.lastS[i] < f.lastS[j]
	}
	return f.lastI[i] < f.lastI[j]
}

// stop ends the reader goroutines and releases batches not delivered.
func (f *feeder) stop() {
	close(f.quit)
	f.wg.Wait()
	for _, ch := range f.chs {
		for b := range ch {
			b.Release()
		}
	}
}
