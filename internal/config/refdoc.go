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
	fset := token.NewFileSet()
	var decls []ast.Decl
	for i, src := range srcs {
		f, err := parser.ParseFile(fset, fmt.Sprintf("types%d.go", i), src, parser.ParseComments)
		if err != nil {
			return "", err
		}
		decls = append(decls, f.Decls...)
	}
	docs := map[string]map[string]string{} // type → field → doc
	typeDocs := map[string]string{}
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
			typeDocs[ts.Name.Name] = strings.TrimSpace(gd.Doc.Text())
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
			docs[ts.Name.Name] = fields
		}
	}

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
		for i := range t.NumField() {
			sf := t.Field(i)
			key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", key, typeName(sf.Type), strings.ReplaceAll(oneLine(fields[sf.Name]), "|", `\|`))
			if inner := structOf(sf.Type); inner != nil {
				nested = append(nested, sf)
			}
		}
		b.WriteString("\n")
		for _, sf := range nested {
			key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
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
	files, err := filepath.Glob(filepath.Join(dir, "types*.go"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	var srcs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		srcs = append(srcs, b)
	}
	return ReferenceMarkdown(srcs...)
}
