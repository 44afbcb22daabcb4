package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// metricRef is how a doc cites a metric: portcullis_ and lower-case words.
// A name ending in '_' (as in `portcullis_l4_*`) is a prefix.
var metricRef = regexp.MustCompile(`portcullis_[a-z0-9_]+`)

var metricName = regexp.MustCompile(`^portcullis_[a-z0-9_]+$`)

// snakeWord is a string constant that may be the middle of a built name.
var snakeWord = regexp.MustCompile(`^[a-z0-9_]+$`)

func TestEveryMetricNamedInTheDocsExistsInTheCode(t *testing.T) {
	root := testbin.RepoRoot()
	known := metricNames(t, root)
	if len(known) < 20 {
		t.Fatalf("found only %d metric names in the Go sources: the scan is broken", len(known))
	}
	docs := markdownFiles(t, root)
	if len(docs) == 0 {
		t.Fatal("no Markdown files found")
	}
	cited := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for i, line := range strings.Split(string(b), "\n") {
			for _, name := range metricRef.FindAllString(line, -1) {
				if name == "portcullis_" {
					continue // a file name (portcullis_<version>.deb), not a metric
				}
				cited++
				if !known.has(name) {
					t.Errorf("%s:%d: %s is not a metric of the Go sources", rel, i+1, name)
				}
			}
		}
	}
	if cited == 0 {
		t.Error("no doc cites a portcullis_ metric: the scan is broken")
	}
}

// names is the set of metric names the sources can produce.
type names map[string]bool

// has reports whether name is a metric, a histogram series of one
// (_bucket, _sum, _count), or, for a name ending in '_', the prefix of one.
func (n names) has(name string) bool {
	if strings.HasSuffix(name, "_") {
		for k := range n {
			if strings.HasPrefix(k, name) {
				return true
			}
		}
		return false
	}
	if n[name] {
		return true
	}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, s); ok && n[b] {
			return true
		}
	}
	return false
}

// metricNames collects, from every non-test Go file, the string constants
// that are metric names, and the names built by concatenation as in
// "portcullis_l4_service_"+m+"_total": for such a pattern, every
// snake_case string constant of the same file is tried in the middle.
func metricNames(t *testing.T, root string) names {
	t.Helper()
	out := names{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		var words []string
		type pattern struct{ prefix, suffix string }
		var patterns []pattern
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok {
					if metricName.MatchString(s) {
						out[s] = true
					}
					if snakeWord.MatchString(s) {
						words = append(words, s)
					}
				}
			case *ast.BinaryExpr:
				if n.Op != token.ADD {
					return true
				}
				parts := flatten(n)
				if len(parts) != 3 {
					return true
				}
				pre, ok1 := stringLit(parts[0])
				suf, ok3 := stringLit(parts[2])
				if _, lit := parts[1].(*ast.BasicLit); ok1 && ok3 && !lit && strings.HasPrefix(pre, "portcullis_") {
					patterns = append(patterns, pattern{pre, suf})
				}
			}
			return true
		})
		for _, p := range patterns {
			for _, w := range words {
				if name := p.prefix + w + p.suffix; metricName.MatchString(name) {
					out[name] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flatten turns a+b+c into [a b c].
func flatten(e ast.Expr) []ast.Expr {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD {
		return append(flatten(b.X), flatten(b.Y)...)
	}
	return []ast.Expr{e}
}

func stringLit(e ast.Expr) (string, bool) {
	l, ok := e.(*ast.BasicLit)
	if !ok || l.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(l.Value)
	return s, err == nil
}

func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
