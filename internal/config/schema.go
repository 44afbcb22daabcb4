package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// SchemaFile is where the generated JSON Schema is committed, relative to the
// repository root; editors point at it (docs/editors.md).
const SchemaFile = "docs/portcullis.schema.json"

// JSONSchema renders the JSON Schema (draft 2020-12) of the config file from
// the same sources and the same walk as ReferenceMarkdown: keys from the yaml
// tags, descriptions from the doc comments, types from the Go types, and what
// validation enforces that a schema can say (fixed value sets, ranges,
// required keys, name syntax) from schemaRules. Every mapping has
// additionalProperties: false, because the loader rejects unknown keys.
//
// The schema is for editors and CI linters; it is a subset of the checks:
// `portcullis validate` remains the authority (cross references, files,
// primes and the like are beyond a schema). It uses only keywords that mean
// the same in draft-07, which yaml-language-server implements (descriptions
// beside $ref aside, which draft-07 readers ignore): keep it so.
func JSONSchema(srcs ...[]byte) ([]byte, error) {
	d, err := parseTypeDocs(srcs...)
	if err != nil {
		return nil, err
	}
	g := &schemaGen{docs: d, defs: map[string]object{}, used: map[string]bool{}}
	root := g.structSchema(reflect.TypeFor[Config]())
	if g.err != nil {
		return nil, g.err
	}
	for key := range schemaRules {
		if !g.used[key] {
			return nil, fmt.Errorf("schema rule %q names no field of the config types", key)
		}
	}
	for key := range schemaTypeRules {
		if _, ok := g.defs[key]; !ok && key != "Config" {
			return nil, fmt.Errorf("schema type rule %q names no type of the config", key)
		}
	}
	doc := object{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", "Portcullis node configuration"},
		{"description", "Generated from internal/config/types*.go by `go generate ./internal/config/`; do not edit. " +
			"The schema checks keys, types and fixed value sets; `portcullis validate --config FILE` checks everything."},
	}
	for _, m := range root {
		if m.key != "description" { // the title says it
			doc = append(doc, m)
		}
	}
	names := make([]string, 0, len(g.defs))
	for n := range g.defs {
		names = append(names, n)
	}
	sort.Strings(names)
	defs := object{{"duration", durationSchema()}}
	for _, n := range names {
		defs = append(defs, member{n, g.defs[n]})
	}
	doc = append(doc, member{"$defs", defs})

	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// JSONSchemaFromDir renders the schema from the types*.go files in dir.
func JSONSchemaFromDir(dir string) ([]byte, error) {
	srcs, err := readTypeSources(dir)
	if err != nil {
		return nil, err
	}
	return JSONSchema(srcs...)
}

// durationPattern is what time.ParseDuration accepts, without the sign
// (negative durations are refused by the decoder).
const durationPattern = `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

func durationSchema() object {
	return object{
		{"description", "A Go duration: a number and a unit (ns, us, ms, s, m, h), several of them for a sum (1m30s); 0 is zero."},
		// The decoder reads a duration from any scalar's text, so a bare 0
		// (an integer in YAML) is as good as "0s".
		{"anyOf", []any{
			object{{"type", "string"}, {"pattern", durationPattern}},
			object{{"const", 0}},
		}},
	}
}

type schemaGen struct {
	docs typeDocs
	defs map[string]object // Go type name → its schema, under $defs
	used map[string]bool   // schemaRules keys that matched a field
	err  error
}

// structSchema returns the schema of a mapping; nested mappings become
// $defs entries named after their Go type and are referred to by $ref.
func (g *schemaGen) structSchema(t reflect.Type) object {
	s := object{}
	if d := g.docs.types[t.Name()]; d != "" {
		s = append(s, member{"description", oneLine(d)})
	}
	s = append(s, member{"type", "object"})
	props := object{}
	var required []string
	for _, sf := range schemaFields(t) {
		key := yamlKey(sf)
		ruleKey := t.Name() + "." + sf.Name
		r, hasRule := schemaRules[ruleKey]
		if hasRule {
			g.used[ruleKey] = true
		}
		p := object{}
		if d := g.docs.fields[t.Name()][sf.Name]; d != "" {
			p = append(p, member{"description", oneLine(d)})
		}
		p = append(p, g.valueSchema(sf.Type, r, ruleKey)...)
		props = append(props, member{key, p})
		if r.required {
			required = append(required, key)
		}
	}
	s = append(s, member{"properties", props})
	if len(required) > 0 {
		s = append(s, member{"required", required})
	}
	s = append(s, member{"additionalProperties", false})
	s = append(s, schemaTypeRules[t.Name()]...)
	return s
}

// valueSchema is the part of a key's schema that its Go type and its rule
// decide.
func (g *schemaGen) valueSchema(t reflect.Type, r schemaRule, ruleKey string) object {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return object{{"$ref", "#/$defs/duration"}}
	case t.Kind() == reflect.Struct:
		if _, done := g.defs[t.Name()]; !done {
			g.defs[t.Name()] = nil // a placeholder, in case a type ever refers to itself
			g.defs[t.Name()] = g.structSchema(t)
		}
		return object{{"$ref", "#/$defs/" + t.Name()}}
	case t.Kind() == reflect.Slice:
		s := object{{"type", "array"}}
		item := r
		item.minItems, item.required = 0, false
		s = append(s, member{"items", g.valueSchema(t.Elem(), item, ruleKey)})
		if r.minItems > 0 {
			s = append(s, member{"minItems", r.minItems})
		}
		return s
	case t.Kind() == reflect.String:
		s := object{{"type", "string"}}
		if len(r.enum) > 0 {
			s = append(s, member{"enum", r.enum})
		}
		if r.pattern != "" {
			s = append(s, member{"pattern", r.pattern})
		}
		return s
	case t.Kind() == reflect.Bool:
		return object{{"type", "boolean"}}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s := object{{"type", "integer"}}
		lo, hi := intBounds(t)
		if r.min != nil {
			lo = higher(lo, *r.min)
		}
		if r.max != nil {
			hi = lower(hi, *r.max)
		}
		rangeOf := object{}
		if lo != nil {
			rangeOf = append(rangeOf, member{"minimum", lo})
		}
		if hi != nil {
			rangeOf = append(rangeOf, member{"maximum", hi})
		}
		if r.orZero && len(rangeOf) > 0 {
			// 0 means "the default" here, though the range excludes it.
			return append(s, member{"anyOf", []any{object{{"const", 0}}, rangeOf}})
		}
		return append(s, rangeOf...)
	}
	if g.err == nil {
		g.err = fmt.Errorf("%s: no JSON Schema for Go type %s", ruleKey, t)
	}
	return nil
}

// intBounds is the range the decoder accepts for an integer type: unsigned
// types refuse negative numbers and numbers beyond their size. Signed
// fields are int or int64, whose range no YAML file reaches.
func intBounds(t reflect.Type) (lo, hi *int64) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		z := int64(0)
		lo = &z
		if t.Bits() < 64 {
			m := int64(1)<<t.Bits() - 1
			hi = &m
		}
	}
	return lo, hi
}

// higher and lower pick the narrower of a type's optional bound and a
// rule's: a rule narrows the type's range.
func higher(a *int64, b int64) *int64 {
	if a != nil && *a > b {
		return a
	}
	return &b
}

func lower(a *int64, b int64) *int64 {
	if a != nil && *a < b {
		return a
	}
	return &b
}

// object is a JSON object whose members keep their order, so the schema
// reads in the order of the Go types (and diffs stay small).
type object []member

type member struct {
	key   string
	value any
}

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		var v bytes.Buffer
		enc := json.NewEncoder(&v)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m.value); err != nil {
			return nil, err
		}
		b.Write(bytes.TrimSuffix(v.Bytes(), []byte("\n")))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// requireOne is a oneOf of required keys: exactly one of them is set.
func requireOne(keys ...string) []any {
	var out []any
	for _, k := range keys {
		out = append(out, object{{"required", []string{k}}})
	}
	return out
}
