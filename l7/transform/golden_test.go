package transform

import (
	"flag"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/route"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/golden")

// TestGolden transforms realistic payloads (testdata/golden/NAME.in.json)
// and compares the bytes with NAME.out.json; `go test -run Golden
// -update` rewrites the outputs after a deliberate change.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  config.JSONOps
	}{
		{"legacy-user-to-v2", config.JSONOps{
			Rename: []config.JSONRename{{From: "user_name", To: "user.name"}, {From: "user_mail", To: "user.email"}},
			Remove: []string{"password_hash", "internal"},
			Set:    []config.JSONSet{{Path: "user.id", Value: "{path.id}"}, {Path: "api_version", JSON: "2"}},
		}},
		{"order-with-items", config.JSONOps{
			Remove: []string{"items.1", "payment.card"},
			Set:    []config.JSONSet{{Path: "meta.client", Value: "{client_ip}"}, {Path: "items.0.discount", JSON: `{"pct": 10}`}},
		}},
		{"unicode-and-escapes-kept", config.JSONOps{
			Rename: []config.JSONRename{{From: "título", To: "title"}},
		}},
		{"nothing-to-change", config.JSONOps{
			Remove: []string{"absent.field"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "golden", tc.name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			s, tbl := compileFor(t, tc.ops)
			r := httptest.NewRequest("POST", "/users/7", nil)
			var res route.Result
			tbl.Match(r, &res)
			out, ok := s.req.apply(in, r, &res, netip.MustParseAddr("192.0.2.1"))
			if !ok {
				t.Fatal("not applied")
			}
			golden := filepath.Join("testdata", "golden", tc.name+".out.json")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(want) {
				t.Errorf("%s:\ngot  %s\nwant %s", golden, out, want)
			}
		})
	}
}
