package abi

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Type is the ABI type code of a batch column: how its values are laid out,
// not which Milvus type they came from.
type Type uint8

// Column type codes. Fixed-width values are little-endian, one element per
// row; TypeBool is one byte per row holding 0 or 1.
const (
	TypeBool    Type = 1  // u8 per row, 0 or 1
	TypeInt8    Type = 2  // i8
	TypeInt16   Type = 3  // i16
	TypeInt32   Type = 4  // i32
	TypeInt64   Type = 5  // i64 (Int64 and VarChar-free primary keys, timestamps, row IDs)
	TypeUint32  Type = 6  // u32 (the row-size column)
	TypeFloat32 Type = 7  // IEEE 754 binary32
	TypeFloat64 Type = 8  // IEEE 754 binary64
	TypeString  Type = 9  // UTF-8 bytes + u32 offsets
	TypeBinary  Type = 10 // opaque bytes + u32 offsets (JSON, Array, sparse vectors)
	TypeFixed   Type = 11 // Width bytes per row (dense vectors)
)

var typeNames = [...]string{
	TypeBool: "bool", TypeInt8: "int8", TypeInt16: "int16", TypeInt32: "int32",
	TypeInt64: "int64", TypeUint32: "uint32", TypeFloat32: "float32", TypeFloat64: "float64",
	TypeString: "string", TypeBinary: "binary", TypeFixed: "fixed",
}

// Valid reports whether t is a known v1 type code.
func (t Type) Valid() bool { return t >= TypeBool && t <= TypeFixed }

// VarLen reports whether t is stored as offsets + bytes.
func (t Type) VarLen() bool { return t == TypeString || t == TypeBinary }

// FixedWidth is the number of bytes per row for fixed-width types other than
// TypeFixed (whose width is per column), and 0 otherwise.
func (t Type) FixedWidth() uint32 {
	switch t {
	case TypeBool, TypeInt8:
		return 1
	case TypeInt16:
		return 2
	case TypeInt32, TypeUint32, TypeFloat32:
		return 4
	case TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// ParseType maps a type name ("int64", ...) to its code.
func ParseType(s string) (Type, error) {
	for i, n := range typeNames {
		if n != "" && n == s {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("abi: unknown column type %q", s)
}

// MarshalJSON writes the type as its name.
func (t Type) MarshalJSON() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("abi: cannot marshal unknown type code %d", uint8(t))
	}
	return json.Marshal(t.String())
}

// UnmarshalJSON accepts a type name.
func (t *Type) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("abi: column type must be a string: %w", err)
	}
	v, err := ParseType(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}
