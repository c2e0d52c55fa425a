package deltalog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// rowParser decodes the string rows of a FormatJSON payload into d.
//
// A row is a JSON object with keys pk, ts and pkType (5 with a number pk, 21
// with a string pk), or, when it does not start with '{' or '[', the legacy
// "pk,ts" text of Int64-only Milvus. Unlike Milvus's lenient gjson reading, a
// JSON row must be valid JSON, ts a non-negative integer and pk an integer of
// int64 range: anything else is a malformed entry, reported with its row number.
// All rows of a file must share one pk type.
type rowParser struct {
	d    *Deletes
	row  int
	hint int // expected rows, to size the pk slice once the pk type is known
	// VarChar pks of the current batch are gathered in arena and turned into
	// one string at the end of the batch, instead of one allocation per pk.
	arena []byte
	spans []span
}

type span struct{ idx, lo, hi int }

// flush gives the VarChar pks of the batch their final strings.
func (p *rowParser) flush() {
	if len(p.spans) == 0 {
		return
	}
	all := string(p.arena)
	for _, sp := range p.spans {
		p.d.StrPKs[sp.idx] = all[sp.lo:sp.hi]
	}
	p.arena, p.spans = p.arena[:0], p.spans[:0]
}

func (p *rowParser) batch(col arrow.Array) error {
	defer p.flush()
	switch c := col.(type) {
	case *array.String:
		for i := 0; i < c.Len(); i++ {
			if err := p.add(c.IsNull(i), c.Value(i)); err != nil {
				return err
			}
		}
	case *array.Binary:
		for i := 0; i < c.Len(); i++ {
			if err := p.add(c.IsNull(i), c.ValueString(i)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("payload column is %s, want string", col.DataType())
	}
	return nil
}

func (p *rowParser) add(null bool, s string) error {
	defer func() { p.row++ }()
	if null {
		return fmt.Errorf("row %d: null entry", p.row)
	}
	var (
		e   entry
		err error
	)
	if e, ok := parseCanonical(s); ok {
		return p.append(e, s)
	}
	switch first := strings.TrimLeft(s, " \t\r\n"); {
	case strings.HasPrefix(first, "{") || strings.HasPrefix(first, "["):
		e, err = parseJSONRow(s)
	default:
		e, err = parseCSVRow(s)
	}
	if err != nil {
		return fmt.Errorf("row %d %s: %w", p.row, clip(s), err)
	}
	return p.append(e, s)
}

func (p *rowParser) append(e entry, s string) error {
	var err error
	if p.d.Len() == 0 && p.hint > 0 {
		if e.pkType == schemapb.DataType_VarChar {
			p.d.StrPKs = make([]string, 0, p.hint)
		} else {
			p.d.IntPKs = make([]int64, 0, p.hint)
		}
	}
	if e.pkType == schemapb.DataType_VarChar {
		if err = p.d.AppendVarChar("", e.ts); err == nil {
			p.spans = append(p.spans, span{p.d.Len() - 1, len(p.arena), len(p.arena) + len(e.str)})
			p.arena = append(p.arena, e.str...)
		}
	} else {
		err = p.d.AppendInt64(e.int, e.ts)
	}
	if err != nil {
		return fmt.Errorf("row %d %s: pk type %v differs from earlier rows' %v", p.row, clip(s), e.pkType, p.d.PKType)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// entry is one parsed row. str may alias the payload buffer until appended.
type entry struct {
	pkType schemapb.DataType
	int    int64
	str    string
	ts     uint64
}

// parseCanonical handles the exact shape Milvus writes,
// {"pk":<int or plain string>,"ts":<uint>,"pkType":<5|21>}, without allocating.
// Anything else (whitespace, other key order, escapes) returns ok=false and goes
// through the general parser, which gives the same answer for valid input.
func parseCanonical(s string) (e entry, ok bool) {
	rest, ok := strings.CutPrefix(s, `{"pk":`)
	if !ok || rest == "" {
		return e, false
	}
	var pkText string
	strPK := rest[0] == '"'
	if strPK {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return e, false
		}
		e.str = rest[1 : 1+end]
		if !plainString(e.str) {
			return e, false
		}
		rest = rest[2+end:]
	} else {
		end := strings.IndexByte(rest, ',')
		if end < 0 {
			return e, false
		}
		pkText, rest = rest[:end], rest[end:]
	}
	rest, ok = strings.CutPrefix(rest, `,"ts":`)
	if !ok {
		return e, false
	}
	end := strings.IndexByte(rest, ',')
	if end < 0 {
		return e, false
	}
	tsText := rest[:end]
	typeText, ok := strings.CutPrefix(rest[end:], `,"pkType":`)
	if !ok {
		return e, false
	}
	typeText, ok = strings.CutSuffix(typeText, "}")
	if !ok || !jsonInt(tsText) || tsText[0] == '-' {
		return e, false
	}
	var err error
	if e.ts, err = strconv.ParseUint(tsText, 10, 64); err != nil {
		return e, false
	}
	switch {
	case typeText == "5" && !strPK && jsonInt(pkText):
		e.pkType = schemapb.DataType_Int64
		if e.int, err = strconv.ParseInt(pkText, 10, 64); err != nil {
			return e, false
		}
	case typeText == "21" && strPK:
		e.pkType = schemapb.DataType_VarChar
	default:
		return e, false
	}
	return e, true
}

// plainString reports whether s can appear between JSON quotes unchanged.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// jsonInt reports whether s is a JSON integer literal: -?(0|[1-9][0-9]*).
func jsonInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseJSONRow(s string) (e entry, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return e, fmt.Errorf("invalid JSON delete entry: %v", err)
	}
	get := func(k string, dst any) error {
		raw, ok := m[k]
		if !ok {
			return fmt.Errorf("key %q missing", k)
		}
		if string(raw) == "null" {
			return fmt.Errorf("key %q is null", k)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("key %q: %s is not a %T", k, raw, dst)
		}
		return nil
	}
	var pkType int64
	if err := get("pkType", &pkType); err != nil {
		return e, err
	}
	if err := get("ts", &e.ts); err != nil {
		return e, err
	}
	e.pkType = schemapb.DataType(pkType)
	switch e.pkType {
	case schemapb.DataType_Int64:
		err = get("pk", &e.int)
	case schemapb.DataType_VarChar:
		err = get("pk", &e.str)
	default:
		err = fmt.Errorf("key \"pkType\": %d is neither Int64 (5) nor VarChar (21)", pkType)
	}
	return e, err
}

// parseCSVRow reads the legacy "<int64 pk>,<uint64 ts>" row.
func parseCSVRow(s string) (e entry, err error) {
	pk, ts, ok := strings.Cut(s, ",")
	if !ok || strings.Contains(ts, ",") {
		return e, fmt.Errorf(`neither a JSON delete entry nor "pk,ts" text`)
	}
	e.pkType = schemapb.DataType_Int64
	if e.int, err = strconv.ParseInt(pk, 10, 64); err != nil {
		return e, fmt.Errorf("legacy pk,ts row: pk %q is not an int64", pk)
	}
	if e.ts, err = strconv.ParseUint(ts, 10, 64); err != nil {
		return e, fmt.Errorf("legacy pk,ts row: ts %q is not a uint64", ts)
	}
	return e, nil
}
