package mixstrategy

import (
	"cmp"
	"slices"

	"github.com/compacthost/compacthost/plugins/internal/pkey"
)

// delEntry is one delete record: a primary key and its delete timestamp
// (a hybrid timestamp, compared as unsigned).
type delEntry[K pkey.Key] struct {
	pk K
	ts uint64
}

// delIndex is the delete map of one input segment: while deletes arrive it
// is a plain list; sealed, it is sorted by pk with one entry per pk holding
// the newest delete ts, and looked up by binary search. That takes 16
// bytes per distinct int64 key (24 plus the key bytes for strings), well
// below a Go map.
type delIndex[K pkey.Key] struct {
	ents   []delEntry[K]
	sealed bool
	cur    int // deletedAsc's position
	// filter has one bit per hash of a deleted pk (about 8 bits per
	// distinct pk, ~12% false positives), so most rows of an unsorted
	// segment skip the binary search.
	filter []uint64
	shift  uint
}

// add appends delete records. Capacity was reserved in begin, so this
// allocates only when the host sends more than it announced.
func (d *delIndex[K]) add(pks []K, ts []int64, arena *pkey.Arena) error {
	var err error
	if d.ents, err = pkey.Grow(d.ents, len(pks), "mix: delete index"); err != nil {
		return err
	}
	for i, pk := range pks {
		if pk, err = pkey.Keep(arena, pk); err != nil {
			return err
		}
		d.ents = append(d.ents, delEntry[K]{pk: pk, ts: uint64(ts[i])})
	}
	return nil
}

// seal sorts the entries and keeps the newest delete per pk.
func (d *delIndex[K]) seal() {
	if d.sealed {
		return
	}
	d.sealed = true
	slices.SortFunc(d.ents, func(a, b delEntry[K]) int { return cmp.Compare(a.pk, b.pk) })
	w := 0
	for _, e := range d.ents {
		if w > 0 && d.ents[w-1].pk == e.pk {
			d.ents[w-1].ts = max(d.ents[w-1].ts, e.ts)
			continue
		}
		d.ents[w] = e
		w++
	}
	clear(d.ents[w:]) // drop references to string keys
	d.ents = d.ents[:w]
	if w == 0 {
		return
	}
	bits := uint(6)
	for 1<<bits < 8*w {
		bits++
	}
	d.shift = 64 - bits
	d.filter = make([]uint64, 1<<(bits-6))
	for _, e := range d.ents {
		h := pkey.Hash(e.pk) >> d.shift
		d.filter[h>>6] |= 1 << (h & 63)
	}
}

// deleted reports whether a row (pk, ts) is deleted: a delete of pk exists
// with a timestamp strictly newer than the row's.
func (d *delIndex[K]) deleted(pk K, ts uint64) bool {
	if h := pkey.Hash(pk) >> d.shift; d.filter[h>>6]&(1<<(h&63)) == 0 {
		return false
	}
	lo, hi := 0, len(d.ents)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if d.ents[m].pk < pk {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(d.ents) && d.ents[lo].pk == pk && ts < d.ents[lo].ts
}

// deletedAsc is deleted for rows whose pks never decrease between calls
// (a sorted segment, order checked by the caller): a cursor walks the
// index once instead of a binary search per row.
func (d *delIndex[K]) deletedAsc(pk K, ts uint64) bool {
	i := d.cur
	for i < len(d.ents) && d.ents[i].pk < pk {
		i++
	}
	d.cur = i
	return i < len(d.ents) && d.ents[i].pk == pk && ts < d.ents[i].ts
}
