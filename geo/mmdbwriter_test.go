package geo

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A minimal MaxMind DB writer (spec: https://maxmind.github.io/MaxMind-DB/), enough to build
// databases the public test files do not cover: other database types, odd or broken records.

// mmMap is an ordered map; values are string, uint16, uint32, uint64, bool, mmMap, []any,
// or mmRaw (bytes copied as they are).
type mmMap []mmKV

type mmKV struct {
	K string
	V any
}

type mmRaw []byte

func mmCtrl(typ int, size int) []byte {
	var out []byte
	var ext []byte
	var first byte
	if typ > 7 {
		first, ext = 0, []byte{byte(typ - 7)}
	} else {
		first = byte(typ << 5)
	}
	switch {
	case size < 29:
		out = append(out, first|byte(size))
		out = append(out, ext...)
	case size < 285:
		out = append(out, first|29)
		out = append(out, ext...)
		out = append(out, byte(size-29))
	default:
		s := size - 285
		out = append(out, first|30)
		out = append(out, ext...)
		out = append(out, byte(s>>8), byte(s))
	}
	return out
}

func mmUint(typ int, v uint64) []byte {
	var b []byte
	for v > 0 {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
	}
	return append(mmCtrl(typ, len(b)), b...)
}

func mmEncode(v any) []byte {
	switch v := v.(type) {
	case string:
		return append(mmCtrl(2, len(v)), v...)
	case uint16:
		return mmUint(5, uint64(v))
	case uint32:
		return mmUint(6, uint64(v))
	case uint64:
		return mmUint(9, v)
	case bool:
		n := 0
		if v {
			n = 1
		}
		return mmCtrl(14, n)
	case mmMap:
		out := mmCtrl(7, len(v))
		for _, kv := range v {
			out = append(out, mmEncode(kv.K)...)
			out = append(out, mmEncode(kv.V)...)
		}
		return out
	case []any:
		out := mmCtrl(11, len(v))
		for _, e := range v {
			out = append(out, mmEncode(e)...)
		}
		return out
	case mmRaw:
		return v
	}
	panic(fmt.Sprintf("mmEncode: unsupported %T", v))
}

// mmBuild returns an IPv4 database (record size 32) of the given type. Record i covers the
// network of addresses whose first i bits are 1 and next bit 0: see mmAddr.
func mmBuild(dbType string, records []any) []byte {
	n := len(records) // one node per record, chained through right children
	var data []byte
	offsets := make([]uint32, n)
	for i, r := range records {
		offsets[i] = uint32(len(data))
		data = append(data, mmEncode(r)...)
	}
	tree := make([]byte, 0, 8*n)
	for i := range n {
		right := uint32(n) // empty
		if i+1 < n {
			right = uint32(i + 1)
		}
		tree = binary.BigEndian.AppendUint32(tree, uint32(n)+16+offsets[i])
		tree = binary.BigEndian.AppendUint32(tree, right)
	}
	out := append(tree, make([]byte, 16)...)
	out = append(out, data...)
	out = append(out, metadataMarker...)
	out = append(out, mmEncode(mmMap{
		{"binary_format_major_version", uint16(2)},
		{"binary_format_minor_version", uint16(0)},
		{"build_epoch", uint64(1700000000)},
		{"database_type", dbType},
		{"description", mmMap{{"en", "consentgate test"}}},
		{"ip_version", uint16(4)},
		{"languages", []any{"en"}},
		{"node_count", uint32(n)},
		{"record_size", uint16(32)},
	})...)
	return out
}

// mmAddr is an address in the network of record i of an mmBuild database (i < 8).
func mmAddr(i int) string { return fmt.Sprintf("%d.0.0.1", byte(uint16(0xff00)>>i)) }

func mmWrite(tb testing.TB, dbType string, records []any) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "test.mmdb")
	if err := os.WriteFile(p, mmBuild(dbType, records), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
