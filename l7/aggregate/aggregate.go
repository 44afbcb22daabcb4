// Package aggregate is the pure part of response aggregation (issue #8,
// docs/transform.md "Response aggregation"): shaping one call's JSON
// (select, rename) and merging the calls' documents. The l7 core makes the
// calls (l7/aggregate.go).
package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrNotJSON is a body that is not one JSON value.
var ErrNotJSON = errors.New("response is not JSON")

// ErrNotObject is a body that merge: object cannot merge.
var ErrNotObject = errors.New("response is not a JSON object")

// Shape keeps and renames the top-level fields of a call's response: of
// the object, or of each object of an array. A nil Shape changes nothing.
type Shape struct {
	keep   map[string]bool // nil: every field
	rename map[string]string
}

// NewShape compiles select and rename (from, to pairs); nil when both are
// empty.
func NewShape(sel []string, rename [][2]string) *Shape {
	if len(sel) == 0 && len(rename) == 0 {
		return nil
	}
	s := &Shape{}
	if len(sel) > 0 {
		s.keep = map[string]bool{}
		for _, f := range sel {
			s.keep[f] = true
		}
	}
	if len(rename) > 0 {
		s.rename = map[string]string{}
		for _, r := range rename {
			s.rename[r[0]] = r[1]
		}
	}
	return s
}

// Apply checks that body is one JSON value and returns it shaped.
func (s *Shape) Apply(body []byte) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return nil, ErrNotJSON
	}
	if s == nil {
		return body, nil
	}
	switch body[0] {
	case '{':
		f, err := parseObject(body)
		if err != nil {
			return nil, ErrNotJSON
		}
		return s.object(f).encode(nil), nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, ErrNotJSON
		}
		out := []byte{'['}
		for i, it := range items {
			if i > 0 {
				out = append(out, ',')
			}
			if len(it) > 0 && it[0] == '{' {
				f, err := parseObject(it)
				if err != nil {
					return nil, ErrNotJSON
				}
				out = s.object(f).encode(out)
			} else {
				out = append(out, it...)
			}
		}
		return append(out, ']'), nil
	}
	return body, nil
}

func (s *Shape) object(in fields) fields {
	var out fields
	for _, f := range in {
		if s.keep != nil && !s.keep[f.key] {
			continue
		}
		if to, ok := s.rename[f.key]; ok {
			f.key = to
		}
		out.set(f.key, f.val)
	}
	return out
}

// IsObject reports whether a (valid, trimmed) JSON body is an object.
func IsObject(body []byte) bool { return len(body) > 0 && body[0] == '{' }

// Part is one call's shaped response.
type Part struct {
	Name string
	Body []byte // one JSON value
}

// Named merges the parts into an object keyed by call name, in order.
func Named(parts []Part) []byte {
	var f fields
	for _, p := range parts {
		f.set(p.Name, p.Body)
	}
	return f.encode(nil)
}

// Objects merges the parts' top-level objects in order: a later part's
// field replaces an earlier one's (in the earlier one's place).
func Objects(parts []Part) ([]byte, error) {
	var f fields
	for _, p := range parts {
		if !IsObject(p.Body) {
			return nil, ErrNotObject
		}
		o, err := parseObject(p.Body)
		if err != nil {
			return nil, ErrNotJSON
		}
		for _, x := range o {
			f.set(x.key, x.val)
		}
	}
	return f.encode(nil), nil
}

type field struct {
	key string
	val []byte
}

// fields is a JSON object with its key order; set replaces a key's value.
type fields []field

func (f *fields) set(k string, v []byte) {
	for i := range *f {
		if (*f)[i].key == k {
			(*f)[i].val = v
			return
		}
	}
	*f = append(*f, field{k, v})
}

func (f fields) encode(out []byte) []byte {
	out = append(out, '{')
	for i, x := range f {
		if i > 0 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(x.key)
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, x.val...)
	}
	return append(out, '}')
}

// parseObject reads a JSON object's fields in order, values left raw.
func parseObject(b []byte) (fields, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, ErrNotObject
	}
	var f fields
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, ErrNotJSON
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		f.set(k, v)
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return nil, err
	}
	return f, nil
}
