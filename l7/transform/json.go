package transform

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"unicode/utf8"
)

// A document is expanded lazily: only the objects and arrays on the way to
// a changed field are parsed; everything else keeps its bytes as the client
// or the upstream wrote them (numbers, escapes, key order, spacing).
type node struct {
	raw  []byte // unexpanded JSON, or a value that was set
	kind byte   // 0: raw; 'o': obj; 'a': arr
	obj  object
	arr  []*node
}

type object struct {
	keys []string
	vals []*node
}

// expand parses n's raw bytes one level deep when they are an object or
// an array; false when they are neither. The raw bytes come from a
// document json.Valid accepted (or from the proxy's own constants), so the
// scan below only has to find where each member starts and ends; members
// keep pointing into the document, nothing is copied.
func (n *node) expand() bool {
	if n.kind != 0 {
		return true
	}
	b := n.raw
	i := skipSpace(b, 0)
	if i >= len(b) || (b[i] != '{' && b[i] != '[') {
		return false
	}
	if b[i] == '{' {
		var o object
		for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
			end := skipString(b, i)
			k, ok := decodeKey(b[i:end])
			if !ok {
				return false
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i = skipSpace(b, i+1)
			end = skipValue(b, i)
			o.keys = append(o.keys, k)
			o.vals = append(o.vals, &node{raw: b[i:end]})
			if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
			}
		}
		n.kind, n.obj, n.raw = 'o', o, nil
		return true
	}
	var a []*node
	for i = skipSpace(b, i+1); i < len(b) && b[i] != ']'; {
		end := skipValue(b, i)
		a = append(a, &node{raw: b[i:end]})
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	n.kind, n.arr, n.raw = 'a', a, nil
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the end of the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// decodeKey unquotes an object key; without escapes it is a plain copy.
func decodeKey(q []byte) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), true
	}
	var k string
	if err := json.Unmarshal(q, &k); err != nil {
		return "", false
	}
	return k, true
}

// child is the value under seg of a container node (expanding n), with
// its position; nil when there is none.
func (n *node) child(seg string) (*node, int) {
	if !n.expand() {
		return nil, -1
	}
	switch n.kind {
	case 'o':
		for i, k := range n.obj.keys {
			if k == seg {
				return n.obj.vals[i], i
			}
		}
	case 'a':
		if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.arr) {
			return n.arr[i], i
		}
	}
	return nil, -1
}

// lookup walks a path; the node is nil when it does not exist.
func (n *node) lookup(path []string) *node {
	for _, seg := range path {
		if n, _ = n.child(seg); n == nil {
			return nil
		}
	}
	return n
}

// set puts v at path, creating missing objects on the way; false when the
// way is blocked (a scalar, an array index out of range).
func (n *node) set(path []string, v *node) bool {
	for i, seg := range path {
		c, at := n.child(seg)
		last := i == len(path)-1
		switch {
		case c != nil && last:
			if n.kind == 'o' {
				n.obj.vals[at] = v
			} else {
				n.arr[at] = v
			}
			return true
		case c != nil:
			n = c
		case n.kind == 'o':
			if last {
				c = v
			} else {
				c = &node{kind: 'o'}
			}
			n.obj.keys = append(n.obj.keys, seg)
			n.obj.vals = append(n.obj.vals, c)
			n = c
		default:
			return false
		}
	}
	return true
}

// remove deletes the value at path; false when there was none.
func (n *node) remove(path []string) bool {
	if len(path) == 0 {
		return false
	}
	p := n.lookup(path[:len(path)-1])
	if p == nil {
		return false
	}
	c, at := p.child(path[len(path)-1])
	if c == nil {
		return false
	}
	if p.kind == 'o' {
		p.obj.keys = append(p.obj.keys[:at], p.obj.keys[at+1:]...)
		p.obj.vals = append(p.obj.vals[:at], p.obj.vals[at+1:]...)
	} else {
		p.arr = append(p.arr[:at], p.arr[at+1:]...)
	}
	return true
}

func (n *node) appendTo(b []byte) []byte {
	switch n.kind {
	case 'o':
		b = append(b, '{')
		for i, k := range n.obj.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = n.obj.vals[i].appendTo(b)
		}
		return append(b, '}')
	case 'a':
		b = append(b, '[')
		for i, v := range n.arr {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.appendTo(b)
		}
		return append(b, ']')
	}
	return append(b, n.raw...)
}

// appendString writes s as a JSON string (RFC 8259 §7): quotes, backslash
// and control characters escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// prefixed is a request body of which the first bytes were read already.
type prefixed struct {
	r    io.Reader
	rest io.ReadCloser
}

func (p *prefixed) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *prefixed) Close() error               { return p.rest.Close() }
