package transform

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/route"
)

func compileFor(t *testing.T, ops config.JSONOps) (*Spec, *route.Table) {
	t.Helper()
	routes := []config.Route{{Name: "r", Pool: "p", Match: config.Match{PathTemplate: "/users/{id}"}}}
	tbl, err := route.Compile(routes, "web")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(&config.BodyTransform{MaxBytes: 1 << 20, Request: &ops, Response: &ops}, tbl.Routes()[0])
	if err != nil {
		t.Fatal(err)
	}
	return s, tbl
}

func TestOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  config.JSONOps
		in   string
		want string
	}{
		{"rename a top-level field moves it to the end",
			config.JSONOps{Rename: []config.JSONRename{{From: "name", To: "full_name"}}},
			`{"name": "Ann", "age": 3}`, `{"age":3,"full_name":"Ann"}`},
		{"rename into a new nested object",
			config.JSONOps{Rename: []config.JSONRename{{From: "a.b", To: "x.y.z"}}},
			`{"a":{"b":[1, 2],"c":1}}`, `{"a":{"c":1},"x":{"y":{"z":[1, 2]}}}`},
		{"rename of a missing field changes nothing",
			config.JSONOps{Rename: []config.JSONRename{{From: "nope", To: "x"}}},
			`{"a":1}`, `{"a":1}`},
		{"remove nested and by array index",
			config.JSONOps{Remove: []string{"user.password", "items.0"}},
			`{"user":{"name":"a","password":"s"},"items":[{"id":1},{"id":2}]}`, `{"user":{"name":"a"},"items":[{"id":2}]}`},
		{"set constants of every JSON type",
			config.JSONOps{Set: []config.JSONSet{{Path: "n", JSON: "42"}, {Path: "o.p", JSON: `{"k": [true, null]}`}, {Path: "s", Value: "edge"}}},
			`{}`, `{"n":42,"o":{"p":{"k":[true,null]}},"s":"edge"}`},
		{"set replaces in place",
			config.JSONOps{Set: []config.JSONSet{{Path: "a", JSON: "2"}, {Path: "items.1.id", JSON: "9"}}},
			`{"a":1,"b":2,"items":[{"id":1},{"id":2}]}`, `{"a":2,"b":2,"items":[{"id":1},{"id":9}]}`},
		{"set through a scalar is skipped",
			config.JSONOps{Set: []config.JSONSet{{Path: "a.b", JSON: "1"}}},
			`{"a":"str"}`, `{"a":"str"}`},
		{"templates read the request",
			config.JSONOps{Set: []config.JSONSet{{Path: "meta.client", Value: "{client_ip}"}, {Path: "meta.user", Value: "user-{path.id}"}, {Path: "meta.q", Value: `{query.q}`}}},
			`{"a":1}`, `{"a":1,"meta":{"client":"192.0.2.1","user":"user-7","q":"a\"b\\c"}}`},
		{"untouched values keep their bytes",
			config.JSONOps{Remove: []string{"x"}},
			`{"big": 12345678901234567890, "esc": "\u00e9<>", "x": 1}`, `{"big":12345678901234567890,"esc":"\u00e9<>"}`},
		{"a top-level array is addressed by index",
			config.JSONOps{Remove: []string{"0.a"}},
			`[{"a":1,"b":2}]`, `[{"b":2}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, tbl := compileFor(t, tc.ops)
			r := httptest.NewRequest("POST", `/users/7?q=a%22b%5Cc`, nil)
			var res route.Result
			tbl.Match(r, &res)
			if res.Route == nil {
				t.Fatal("no match")
			}
			out, ok := s.req.apply([]byte(tc.in), r, &res, netip.MustParseAddr("192.0.2.1"))
			if !ok {
				t.Fatal("not applied")
			}
			if string(out) != tc.want {
				t.Errorf("got  %s\nwant %s", out, tc.want)
			}
		})
	}
}

func TestInvalidAndScalarDocumentsAreNotTransformed(t *testing.T) {
	s, _ := compileFor(t, config.JSONOps{Remove: []string{"a"}})
	for _, in := range []string{`{"a":1`, `"str"`, `42`, ``, `{"a":1} x`} {
		if _, ok := s.req.apply([]byte(in), nil, nil, netip.Addr{}); ok {
			t.Errorf("%q was transformed", in)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"application/problem+json":          true,
		"Application/Vnd.Api+JSON":          true,
		"text/json":                         false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"+json":                             false,
	} {
		if got := IsJSON([]string{ct}); got != want {
			t.Errorf("IsJSON(%q) = %v, want %v", ct, got, want)
		}
	}
	if IsJSON(http.Header{}["Content-Type"]) {
		t.Error("no Content-Type is not JSON")
	}
}

func FuzzApply(f *testing.F) {
	f.Add(`{"a":{"b":[1,{"c":2}]}}`)
	f.Add(`[1,2,3]`)
	s, _ := compileForFuzz(f)
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := s.req.apply([]byte(in), nil, nil, netip.Addr{})
		if ok && !jsonValid(out) {
			t.Fatalf("%q → invalid %q", in, out)
		}
	})
}

func compileForFuzz(f *testing.F) (*Spec, error) {
	tbl, err := route.Compile([]config.Route{{Name: "r", Pool: "p"}}, "web")
	if err != nil {
		f.Fatal(err)
	}
	ops := &config.JSONOps{
		Rename: []config.JSONRename{{From: "a.b", To: "x.y"}},
		Remove: []string{"a.b.1.c", "0"},
		Set:    []config.JSONSet{{Path: "z.0", JSON: `"v"`}, {Path: "k", Value: "const"}},
	}
	s, err := Compile(&config.BodyTransform{MaxBytes: 1 << 20, Request: ops}, tbl.Routes()[0])
	if err != nil {
		f.Fatal(err)
	}
	return s, nil
}

func jsonValid(b []byte) bool { return json.Valid(b) }
