// Package bpfconv converts between Go values and the structs bpf2go
// generates, for l4 and l4/decap.
package bpfconv

import (
	"encoding/binary"
	"net/netip"
	"reflect"
)

// AddrWords lays out an address (v4-mapped for IPv4) as the u32 words
// the BPF structs hold, so it marshals back to the same 16 bytes. The
// zero Addr is all zeros.
func AddrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if !a.IsValid() {
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

// SumInto adds per-CPU records of a struct of uint64 counters into dst.
func SumInto[T any](dst *T, percpu []T) {
	dv := reflect.ValueOf(dst).Elem()
	for i := range percpu {
		sv := reflect.ValueOf(&percpu[i]).Elem()
		for f := 0; f < dv.NumField(); f++ {
			if dv.Field(f).Kind() == reflect.Uint64 {
				dv.Field(f).SetUint(dv.Field(f).Uint() + sv.Field(f).Uint())
			}
		}
	}
}

// Fields names the uint64 fields of a generated counter struct (p points
// to it) by their C names (bpf2go's CamelCase undone), so a counter added
// in C appears in Stats and metrics with no Go change.
func Fields(p any) map[string]uint64 {
	v := reflect.ValueOf(p).Elem()
	out := map[string]uint64{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Type.Kind() != reflect.Uint64 {
			continue
		}
		out[Snake(f.Name)] = v.Field(i).Uint()
	}
	return out
}

// Snake turns bpf2go's PassTruncL2 back into pass_trunc_l2.
func Snake(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b = append(b, '_')
			}
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}
