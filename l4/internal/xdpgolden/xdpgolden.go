// Package xdpgolden is the golden packet file format of the tests of l4
// and l4/decap (action, input and output frames in hex), kept in one
// place because l4/decap replays l4's encapsulation goldens.
package xdpgolden

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Actions names the XDP return codes as the files spell them.
var Actions = map[uint32]string{0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX"}

// Path is the file of the case called name in dir.
func Path(dir, name string) string {
	r := strings.NewReplacer(" ", "_", "/", "_")
	return filepath.Join(dir, r.Replace(name)+".golden")
}

// Check compares a run with the file at path, or with update rewrites
// it. rerun is the command that rewrites the files, for the message when
// one is missing.
func Check(t testing.TB, path string, act uint32, in, out []byte, update bool, rerun string) {
	t.Helper()
	got := fmt.Sprintf("action: %s\nin:  %s\nout: %s\n", Actions[act], hex.EncodeToString(in), hex.EncodeToString(out))
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run %s)", err, rerun)
	}
	if string(want) != got {
		t.Errorf("differs from %s (rerun with -update and review the diff):\n got %s\nwant %s", path, got, want)
	}
}

// Read returns the action and frames of the file at path.
func Read(t testing.TB, path string) (act string, in, out []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "action":
			act = v
		case "in":
			in, _ = hex.DecodeString(v)
		case "out":
			out, _ = hex.DecodeString(v)
		}
	}
	return act, in, out
}
