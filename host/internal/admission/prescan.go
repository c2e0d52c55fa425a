package admission

import (
	"errors"
	"fmt"
)

// Limits checked by Prescan.
const (
	// MaxLocals bounds the locals of one function (the limit browsers use).
	MaxLocals = 50000
	// MaxTableMin bounds a table's declared minimum size: wazero allocates
	// the table (8 bytes per entry, on the host's heap, outside the memory
	// grant) at instantiation. Go guests need about one entry per function.
	MaxTableMin = 1 << 20
)

// Prescan walks the module's structure without allocating and checks that
// every count and length the decoder will size an allocation from fits in
// the bytes that follow it (each element needs at least one byte), and that
// no function declares more than MaxLocals locals.
//
// It runs before wazero's CompileModule because wazero v1.12's decoder
// allocates vectors from untrusted counts before reading them: a 20-byte
// module declaring 2^32-1 results in a function type makes it ask for 32 GB
// and the Go runtime dies with a fatal, unrecoverable out-of-memory.
// Together with the size limit this bounds what decoding can allocate to a
// multiple of the binary's size (at most ~25x, for a code section of empty
// 3-byte bodies each decoded into a ~72-byte record). Everything else (opcodes, types,
// indexes) is left to wazero's validation.
func Prescan(b []byte) *Violation {
	err := prescan(b)
	if err == nil {
		return nil
	}
	return &Violation{RuleValidate, "structure: " + err.Error()}
}

type scanner struct {
	b   []byte
	pos int
	end int
}

var errEOF = errors.New("unexpected end of section")

func (s *scanner) rem() int { return s.end - s.pos }

func (s *scanner) byte() (byte, error) {
	if s.pos >= s.end {
		return 0, errEOF
	}
	s.pos++
	return s.b[s.pos-1], nil
}

func (s *scanner) u32() (uint32, error) {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c, err := s.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, errors.New("LEB128 u32 overflows")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("LEB128 u32 too long")
}

// sleb skips a signed LEB128 of at most maxBytes bytes.
func (s *scanner) sleb(maxBytes int) error {
	for i := 0; i < maxBytes; i++ {
		c, err := s.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("LEB128 too long")
}

// count reads a vector length and checks it against the remaining bytes,
// each element taking at least minSize bytes.
func (s *scanner) count(what string, minSize int) (int, error) {
	n, err := s.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(s.rem()) {
		return 0, fmt.Errorf("%s count %d exceeds the %d bytes that follow", what, n, s.rem())
	}
	return int(n), nil
}

func (s *scanner) skip(n int) error {
	if n > s.rem() {
		return errEOF
	}
	s.pos += n
	return nil
}

// bytes skips a length-prefixed byte string (names, data).
func (s *scanner) bytes(what string) error {
	n, err := s.count(what+" length", 1)
	if err != nil {
		return err
	}
	return s.skip(n)
}

// limits skips a limits record and returns its minimum.
func (s *scanner) limits() (uint32, error) {
	flag, err := s.byte()
	if err != nil {
		return 0, err
	}
	if flag > 3 {
		return 0, fmt.Errorf("unsupported limits flag 0x%x", flag)
	}
	min, err := s.u32()
	if err != nil {
		return 0, err
	}
	if flag&1 != 0 {
		_, err = s.u32()
	}
	return min, err
}

// table skips a table type (reftype, limits) and bounds its minimum.
func (s *scanner) table() error {
	if _, err := s.byte(); err != nil {
		return err
	}
	min, err := s.limits()
	if err == nil && min > MaxTableMin {
		err = fmt.Errorf("table minimum %d entries exceeds %d", min, MaxTableMin)
	}
	return err
}

// constExpr skips a constant expression up to and including its end.
func (s *scanner) constExpr() error {
	for {
		op, err := s.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41: // i32.const
			err = s.sleb(5)
		case 0x42: // i64.const
			err = s.sleb(10)
		case 0x43: // f32.const
			err = s.skip(4)
		case 0x44: // f64.const
			err = s.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			_, err = s.u32()
		case 0xd0: // ref.null t
			_, err = s.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
		default:
			return fmt.Errorf("opcode 0x%x in a constant expression", op)
		}
		if err != nil {
			return err
		}
	}
}

func prescan(b []byte) error {
	if len(b) < 8 {
		return errors.New("shorter than the wasm header")
	}
	top := &scanner{b: b, pos: 8, end: len(b)}
	for top.rem() > 0 {
		id, err := top.byte()
		if err != nil {
			return err
		}
		size, err := top.count("section size", 1)
		if err != nil {
			return fmt.Errorf("section %d: %w", id, err)
		}
		s := &scanner{b: b, pos: top.pos, end: top.pos + size}
		if err := section(id, s); err != nil {
			return fmt.Errorf("section %d at offset %d: %w", id, top.pos, err)
		}
		top.pos += size
	}
	return nil
}

func section(id byte, s *scanner) error {
	switch id {
	case 0:
		return customSection(s)
	case 1:
		return vec(s, "type", 3, func() error {
			if form, err := s.byte(); err != nil || form != 0x60 {
				return errors.Join(err, fmt.Errorf("type form 0x%x is not a function type", form))
			}
			for _, what := range []string{"params", "results"} {
				n, err := s.count(what, 1)
				if err != nil {
					return err
				}
				if err := s.skip(n); err != nil {
					return err
				}
			}
			return nil
		})
	case 2:
		return vec(s, "import", 4, func() error {
			if err := s.bytes("module name"); err != nil {
				return err
			}
			if err := s.bytes("import name"); err != nil {
				return err
			}
			kind, err := s.byte()
			if err != nil {
				return err
			}
			switch kind {
			case 0: // func
				_, err = s.u32()
			case 1: // table
				err = s.table()
			case 2: // memory
				_, err = s.limits()
			case 3: // global
				err = s.skip(2)
			case 4: // tag
				if _, err = s.byte(); err == nil {
					_, err = s.u32()
				}
			default:
				err = fmt.Errorf("import kind 0x%x", kind)
			}
			return err
		})
	case 4:
		return vec(s, "table", 3, s.table)
	case 3, 5, 6, 13: // function, memory, global, tag: flat entries
		_, err := s.count("entry", 1)
		return err
	case 7:
		return vec(s, "export", 3, func() error {
			if err := s.bytes("export name"); err != nil {
				return err
			}
			if err := s.skip(1); err != nil {
				return err
			}
			_, err := s.u32()
			return err
		})
	case 9:
		return vec(s, "element segment", 2, func() error { return elementSegment(s) })
	case 10:
		return vec(s, "function body", 3, func() error { // size, local count, end
			size, err := s.count("body size", 1)
			if err != nil {
				return err
			}
			body := &scanner{b: s.b, pos: s.pos, end: s.pos + size}
			decls, err := body.count("local declaration", 2)
			if err != nil {
				return err
			}
			var locals uint64
			for range decls {
				n, err := body.u32()
				if err != nil {
					return err
				}
				if locals += uint64(n); locals > MaxLocals {
					return fmt.Errorf("a function declares more than %d locals", MaxLocals)
				}
				if err := body.skip(1); err != nil {
					return err
				}
			}
			s.pos += size
			return nil
		})
	case 11:
		return vec(s, "data segment", 2, func() error {
			flag, err := s.u32()
			if err != nil {
				return err
			}
			switch flag {
			case 0:
				err = s.constExpr()
			case 1:
			case 2:
				if _, err = s.u32(); err == nil {
					err = s.constExpr()
				}
			default:
				err = fmt.Errorf("data segment flag %d", flag)
			}
			if err != nil {
				return err
			}
			return s.bytes("data")
		})
	}
	return nil // start, data count, unknown ids: no allocation from counts
}

func vec(s *scanner, what string, minSize int, each func() error) error {
	n, err := s.count(what, minSize)
	if err != nil {
		return err
	}
	for i := range n {
		if err := each(); err != nil {
			return fmt.Errorf("%s %d: %w", what, i, err)
		}
	}
	return nil
}

func elementSegment(s *scanner) error {
	flag, err := s.u32()
	if err != nil {
		return err
	}
	if flag > 7 {
		return fmt.Errorf("element segment flag %d", flag)
	}
	if flag&2 != 0 && flag&1 == 0 { // explicit table index
		if _, err := s.u32(); err != nil {
			return err
		}
	}
	if flag&1 == 0 { // active: offset expression
		if err := s.constExpr(); err != nil {
			return err
		}
	}
	if flag&3 != 0 { // elemkind or reftype byte
		if _, err := s.byte(); err != nil {
			return err
		}
	}
	if flag&4 == 0 {
		return vec(s, "function index", 1, func() error { _, err := s.u32(); return err })
	}
	return vec(s, "element expression", 1, s.constExpr)
}

// customSection checks the "name" section, which wazero decodes (other
// custom sections are skipped unless configured otherwise).
func customSection(s *scanner) error {
	nameLen, err := s.count("custom section name length", 1)
	if err != nil {
		return err
	}
	name := string(s.b[s.pos : s.pos+nameLen])
	s.pos += nameLen
	if name != "name" {
		return nil
	}
	for s.rem() > 0 {
		sub, err := s.byte()
		if err != nil {
			return err
		}
		size, err := s.count("name subsection size", 1)
		if err != nil {
			return err
		}
		ss := &scanner{b: s.b, pos: s.pos, end: s.pos + size}
		switch sub {
		case 1: // function names: vec(idx, name)
			err = vec(ss, "function name", 2, func() error {
				if _, err := ss.u32(); err != nil {
					return err
				}
				return ss.bytes("function name")
			})
		case 2: // local names: vec(idx, vec(idx, name))
			err = vec(ss, "local name map", 2, func() error {
				if _, err := ss.u32(); err != nil {
					return err
				}
				return vec(ss, "local name", 2, func() error {
					if _, err := ss.u32(); err != nil {
						return err
					}
					return ss.bytes("local name")
				})
			})
		}
		if err != nil {
			return fmt.Errorf("name section: %w", err)
		}
		s.pos += size
	}
	return nil
}
