package config

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// ReferenceMarkdown renders the configuration reference from the doc
// comments of the schema's types (the sources of types*.go), walking the
// schema from Config down. The reference is generated so that it cannot drift
// from the code: a test compares it with docs/configuration.md.
func ReferenceMarkdown(srcs ...[]byte) (string, error) {
	d, err := parseTypeDocs(srcs...)
	if err != nil {
		return "", err
	}
	docs, typeDocs := d.fields, d.types

	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- Generated from internal/config/types*.go by `go generate ./internal/config/`; do not edit. -->\n\n")
	b.WriteString("One YAML file per node. Decoding is strict: an unknown key, a wrong type or an invalid\n")
	b.WriteString("value is an error naming `file:line:column` and the key path, and every error in the file\n")
	b.WriteString("is reported at once (`portcullis validate --config FILE`). Relative file paths are taken\n")
	b.WriteString("from the config file's folder. Durations are Go durations (`500ms`, `2s`, `1m`).\n\n")
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		fields := docs[t.Name()]
		heading := path
		if heading == "" {
			heading = "(top level)"
		}
		fmt.Fprintf(&b, "## `%s`\n\n", heading)
		if d := typeDocs[t.Name()]; d != "" {
			b.WriteString(oneLine(d) + "\n\n")
		}
		b.WriteString("| key | type | meaning |\n| --- | --- | --- |\n")
		var nested []reflect.StructField
		for _, sf := range schemaFields(t) {
			key := yamlKey(sf)
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", key, typeName(sf.Type), strings.ReplaceAll(oneLine(fields[sf.Name]), "|", `\|`))
			if inner := structOf(sf.Type); inner != nil {
				nested = append(nested, sf)
			}
		}
		b.WriteString("\n")
		for _, sf := range nested {
			key := yamlKey(sf)
			sub := joinPath(path, key)
			if k := sf.Type.Kind(); k == reflect.Slice {
				sub += "[]"
			}
			walk(structOf(sf.Type), sub)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return b.String(), nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var durationType = reflect.TypeFor[Duration]()

func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && t != durationType {
		return t
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Pointer:
		return typeName(t.Elem())
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	case t.Kind() == reflect.Struct:
		return "mapping"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "bool"
	default:
		return "integer"
	}
}

// ReferenceFromDir renders the reference from the types*.go files in dir.
func ReferenceFromDir(dir string) (string, error) {
	srcs, err := readTypeSources(dir)
	if err != nil {
		return "", err
	}
	return ReferenceMarkdown(srcs...)
}

// readTypeSources reads the types*.go files of dir in name order: the
// sources whose doc comments both the reference and the JSON Schema quote.
func readTypeSources(dir string) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "types*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var srcs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, b)
	}
	return srcs, nil
}

// typeDocs are the doc comments of the schema's struct types and of their
// fields, by Go name.
type typeDocs struct {
	types  map[string]string            // type → doc
	fields map[string]map[string]string // type → field → doc
}

// parseTypeDocs collects the doc comments of every struct type declared in
// srcs (the sources of types*.go).
func parseTypeDocs(srcs ...[]byte) (typeDocs, error) {
	fset := token.NewFileSet()
	var decls []ast.Decl
	for i, src := range srcs {
		f, err := parser.ParseFile(fset, fmt.Sprintf("types%d.go", i), src, parser.ParseComments)
		if err != nil {
			return typeDocs{}, err
		}
		decls = append(decls, f.Decls...)
	}
	d := typeDocs{types: map[string]string{}, fields: map[string]map[string]string{}}
	for _, decl := range decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			d.types[ts.Name.Name] = strings.TrimSpace(gd.Doc.Text())
			fields := map[string]string{}
			var shared string
			for _, fl := range st.Fields.List {
				doc := strings.TrimSpace(fl.Doc.Text())
				if doc == "" {
					doc = shared // a comment above "A, B string" lines covers the next ones too
				} else {
					shared = doc
				}
				for _, n := range fl.Names {
					fields[n.Name] = doc
				}
			}
			d.fields[ts.Name.Name] = fields
		}
	}
	return d, nil
}

// schemaFields are the fields of t that are YAML keys, in declaration order.
func schemaFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		if key := yamlKey(t.Field(i)); key != "" && key != "-" {
			out = append(out, t.Field(i))
		}
	}
	return out
}

// yamlKey is the field's key in the file.
func yamlKey(sf reflect.StructField) string { return strings.Split(sf.Tag.Get("yaml"), ",")[0] }
