package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Duration is a time.Duration written as a Go duration string ("1.5s", "200ms").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 500ms, 2s, 1m)", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints the duration the way it is written.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// decoder walks the YAML AST into the Go types itself instead of using a
// library's struct decoder. That is what lets it report every unknown key and
// every wrong type in one pass, each with its position, rather than stopping
// at the first, and it records where every key path sits so that validation
// errors found later can point at the line too.
type decoder struct {
	file   string
	errs   Errors
	pos    map[string]Pos
	anchor map[string]ast.Node
	// bad holds the paths whose value could not be decoded. Validation skips
	// them: a value of the wrong type reads as missing, and "missing" would
	// only repeat the error already reported.
	bad map[string]bool
}

// Pos is a position in a config file.
type Pos struct{ Line, Col int }

func decodeYAML(file string, src []byte, out *Config) (*decoder, error) {
	d := &decoder{file: file, pos: map[string]Pos{}, anchor: map[string]ast.Node{}, bad: map[string]bool{}}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, syntaxError(file, err)
	}
	if len(f.Docs) > 1 {
		d.errs = append(d.errs, Error{File: file, Line: posOf(f.Docs[1].Body).Line, Msg: "only one YAML document is allowed"})
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return d, nil // an empty file is an empty config; validation says what is missing
	}
	d.decode(f.Docs[0].Body, reflect.ValueOf(out).Elem(), "")
	return d, nil
}

func posOf(n ast.Node) Pos {
	if n == nil || n.GetToken() == nil {
		return Pos{}
	}
	p := n.GetToken().Position
	return Pos{Line: p.Line, Col: p.Column}
}

// fail reports a value that could not be decoded.
func (d *decoder) fail(n ast.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.failKey(n, path, format, args...)
}

// failKey reports a problem with a key (unknown, repeated) that leaves the
// known fields intact, so validation can still run over them.
func (d *decoder) failKey(n ast.Node, path, format string, args ...any) {
	p := posOf(n)
	d.errs = append(d.errs, Error{File: d.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// unwrap resolves anchors, aliases and tags to the node that holds the value.
func (d *decoder) unwrap(n ast.Node, path string) ast.Node {
	for depth := 0; depth < 32; depth++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			if v.Name != nil {
				d.anchor[v.Name.String()] = v.Value
			}
			n = v.Value
		case *ast.AliasNode:
			target, ok := d.anchor[v.Value.String()]
			if !ok {
				d.fail(n, path, "unknown alias *%s", v.Value.String())
				return nil
			}
			n = target
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	d.fail(n, path, "aliases nested too deep")
	return nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *decoder) decode(n ast.Node, v reflect.Value, path string) {
	d.pos[path] = posOf(n)
	n = d.unwrap(n, path)
	if n == nil {
		return
	}
	if _, isNull := n.(*ast.NullNode); isNull {
		return // "key:" with no value leaves the zero value, as YAML readers expect
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		s, ok := d.scalarText(n)
		if !ok {
			d.fail(n, path, "expected a string, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.fail(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, item := range seq.Values {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		switch s := n.(type) {
		case *ast.StringNode:
			v.SetString(s.Value)
		case *ast.LiteralNode:
			v.SetString(s.Value.Value)
		default:
			d.fail(n, path, "expected a string, got %s (quote it if it is meant as text)", kindName(n))
		}
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.fail(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.decodeInt(n, v, path)
	default:
		d.fail(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeInt(n ast.Node, v reflect.Value, path string) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		d.fail(n, path, "expected an integer, got %s", kindName(n))
		return
	}
	var i int64
	var big bool
	switch x := in.Value.(type) {
	case int64:
		i = x
	case uint64:
		if x > math.MaxInt64 {
			big = true
		}
		i = int64(x)
	}
	switch v.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if i < 0 || big || v.OverflowUint(uint64(i)) {
			d.fail(n, path, "%s is out of range for this key (0 to %d)", in.Token.Value, uint64(1)<<(v.Type().Bits())-1)
			return
		}
		v.SetUint(uint64(i))
	default:
		if big || v.OverflowInt(i) {
			d.fail(n, path, "%s is out of range for this key", in.Token.Value)
			return
		}
		v.SetInt(i)
	}
}

func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		d.fail(n, path, "expected a mapping (key: value), got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for _, kv := range pairs {
		if _, merge := kv.Key.(*ast.MergeKeyNode); merge {
			d.fail(kv.Key, path, "merge keys (<<) are not supported; repeat the keys or use an alias for the whole value")
			continue
		}
		key := kv.Key.String()
		if k, ok := kv.Key.(*ast.StringNode); ok {
			key = k.Value
		}
		sub := joinPath(path, key)
		idx, ok := fields[key]
		if !ok {
			d.failKey(kv.Key, sub, "unknown key %q%s", key, suggest(key, fields))
			continue
		}
		if seen[key] {
			d.failKey(kv.Key, sub, "key %q appears twice", key)
			continue
		}
		seen[key] = true
		d.decode(kv.Value, v.Field(idx), sub)
		d.pos[sub] = posOf(kv.Key)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		m[strings.Split(tag, ",")[0]] = i
	}
	return m
}

// suggest names the closest known key, because "unknown key listner" is only
// half an error message.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for k := range fields {
		if dist := editDistance(key, k); dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) scalarText(n ast.Node) (string, bool) {
	switch s := n.(type) {
	case *ast.StringNode:
		return s.Value, true
	case *ast.LiteralNode:
		return s.Value.Value, true
	case *ast.IntegerNode:
		return s.Token.Value, true
	case *ast.FloatNode:
		return strconv.FormatFloat(s.Value, 'g', -1, 64), true
	}
	return "", false
}

func kindName(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return strings.ToLower(n.Type().String())
}
