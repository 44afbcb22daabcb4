package e2etest

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// H2SpecBin finds h2spec (go install
// github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible), or skips.
func H2SpecBin(t *testing.T) string {
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
// preface check.
var h2specKnown = map[string]bool{
	"http2/4.2/3": true, "http2/6.5.3/1": true, "http2/8.1.2.2/1": true, "http2/8.1.2.2/2": true,
	"http2/3.5/2": true,
}

// h2specFlaky fail now and then on a loaded machine for Go's own server as
// well: 6.9.1/3 (the client lowers the initial window to 1 byte, and a fast
// handler's DATA frame can be queued before the SETTINGS is applied).
var h2specFlaky = map[string]bool{"http2/6.9.1/3": true}

type junit struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Error   *struct{} `xml:"error"`
			Failure *struct{} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runH2Spec runs h2spec (the whole suite, or the given case ids) and
// returns the ids of the failing cases and the number run.
func runH2Spec(t *testing.T, bin, host string, port, timeout int, extra []string, ids ...string) (failed []string, total int) {
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

// H2Spec runs the HTTP/2 conformance suite against host:port (over TLS
// when tls is set) and fails t for any case beyond the ones Go's own server
// fails. Another failing case is run once more on its own with a longer
// timeout, because on 2 busy cores h2spec's 2 s timeouts flake; it fails
// the test only if it fails again (the known flake 6.9.1/3 is then logged).
func H2Spec(t *testing.T, host string, port int, tls bool) {
	t.Helper()
	bin := H2SpecBin(t)
	var extra []string
	if tls {
		extra = []string{"-t", "-k"}
	}
	failed, total := runH2Spec(t, bin, host, port, 2, extra)
	if total < 140 {
		t.Fatalf("h2spec ran %d cases, want the whole suite (145)", total)
	}
	var known, unexpected []string
	for _, id := range failed {
		if h2specKnown[id] {
			known = append(known, id)
		} else {
			unexpected = append(unexpected, id)
		}
	}
	t.Logf("h2spec: %d cases, %d passed, %d failed: known %v, other %v", total, total-len(failed), len(failed), known, unexpected)
	for _, id := range unexpected {
		// One case at a time: h2spec numbers the cases it ran, so a lone
		// case always comes back as case 1.
		again, _ := runH2Spec(t, bin, host, port, 5, extra, id)
		switch {
		case len(again) == 0:
			t.Logf("%s failed once and passed on a re-run", id)
		case h2specFlaky[id]:
			t.Logf("%s failed twice; it is a known flake of Go's own HTTP/2 server under load", id)
		default:
			t.Errorf("h2spec case %s fails beyond what Go's own server fails", id)
		}
	}
}
