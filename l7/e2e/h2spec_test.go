package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The h2spec runner, as in l7/listen/h2spec_test.go.

// h2specBin finds h2spec (go install
// github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible).
func h2specBin(t *testing.T) string {
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	for _, p := range []string{filepath.Join(os.Getenv("GOPATH"), "bin", "h2spec"), filepath.Join(home, "go", "bin", "h2spec")} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Skip("h2spec not installed: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible")
	return ""
}

// h2specKnown are the cases Go 1.26's own HTTP/2 server fails
// (../shared/LAB.md): oversized HEADERS, a DATA frame on a closed stream
// unanswered, connection-specific and TE headers accepted, and over h2c the
// preface check. A failure outside this list fails the test.
var h2specKnown = map[string]bool{
	"http2/4.2/3": true, "http2/6.5.3/1": true, "http2/8.1.2.2/1": true, "http2/8.1.2.2/2": true,
	"http2/3.5/2": true,
}

// h2specFlaky fail now and then for Go's own server under load: logged,
// not failed.
var h2specFlaky = map[string]bool{"http2/6.9.1/3": true}

type junit struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name    string    `xml:"classname,attr"`
			Error   *struct{} `xml:"error"`
			Failure *struct{} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runH2spec runs h2spec (the whole suite, or the given case ids) and returns
// the ids of the failing cases and the number run.
func runH2spec(t *testing.T, bin, host string, port, timeout int, extra []string, ids ...string) (failed []string, total int) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(append([]string{}, ids...), "-h", host, "-p", strconv.Itoa(port), "-o", strconv.Itoa(timeout), "-j", report)
	out, _ := exec.CommandContext(ctx, bin, append(args, extra...)...).CombinedOutput()
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v\n%s", err, out)
	}
	var j junit
	if err := xml.Unmarshal(raw, &j); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	for _, s := range j.Suites {
		for i, c := range s.Cases {
			total++
			if c.Error != nil || c.Failure != nil {
				failed = append(failed, fmt.Sprintf("%s/%d", s.Package, i+1))
			}
		}
	}
	return failed, total
}

// TestH2SpecThroughTheDaemon runs the HTTP/2 conformance suite against the
// daemon's TLS listener and its h2c listener; the requests h2spec sends
// are proxied (default route → the HTTP/1.1 upstream). Known failures of
// Go's own server are allowed; any other failure is run once more on its
// own with a longer timeout and fails the test if it fails again (except
// the known flake 6.9.1/3, logged).
func TestH2SpecThroughTheDaemon(t *testing.T) {
	bin := h2specBin(t)
	f := newFixture(t)
	tests := []struct {
		name string
		port int
		args []string
	}{
		{"over TLS", f.tlsPort, []string{"-t", "-k"}},
		{"over h2c", f.h2cPort, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed, total := runH2spec(t, bin, "127.0.0.1", tt.port, 2, tt.args)
			if total < 140 {
				t.Fatalf("h2spec ran %d cases, want the whole suite (146)", total)
			}
			var known, unexpected []string
			for _, id := range failed {
				if h2specKnown[id] {
					known = append(known, id)
				} else {
					unexpected = append(unexpected, id)
				}
			}
			t.Logf("h2spec %s through the daemon: %d cases, %d passed, %d failed: known %v, other %v",
				tt.name, total, total-len(failed), len(failed), known, unexpected)
			for _, id := range unexpected {
				// One case at a time: h2spec numbers the cases it ran,
				// so a lone case always comes back as case 1.
				again, _ := runH2spec(t, bin, "127.0.0.1", tt.port, 5, tt.args, id)
				switch {
				case len(again) == 0:
					t.Logf("%s failed once and passed on a re-run", id)
				case h2specFlaky[id]:
					t.Logf("%s failed twice; it is a known flake of Go's own HTTP/2 server under load", id)
				default:
					t.Errorf("h2spec case %s fails beyond what Go's own server fails", id)
				}
			}
		})
	}
	t.Run("the daemon still serves", func(t *testing.T) {
		for _, c := range f.clients(t) {
			resp, err := c.c.Get(c.base + "/h2c/after-h2spec")
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: %s", c.name, resp.Status)
			}
		}
		if log := f.d.log(); strings.Contains(log, "panic") {
			t.Errorf("the daemon logged a panic:\n%s", tail(log, 4000))
		}
	})
}
