// Package testbin builds the portcullis binary once per test process, for
// tests that run the daemon as a user would (a real process, real signals).
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
	out  []byte
)

// Portcullis returns the path of a freshly built portcullis binary.
func Portcullis(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, derr := os.MkdirTemp("", "portcullis-bin-")
		if derr != nil {
			err = derr
			return
		}
		path = filepath.Join(dir, "portcullis")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/portcullis")
		cmd.Dir = RepoRoot()
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("building portcullis: %v\n%s", err, out)
	}
	return path
}

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
