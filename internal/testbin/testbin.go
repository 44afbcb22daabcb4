// Package testbin builds the portcullis binary once per test process, for
// tests that run the daemon as a user would (a real process, real signals).
package testbin

import (
	"fmt"
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
//
// Every test process builds it into one shared folder and renames it into
// place, so parallel packages never see half a file and runs leave one
// binary behind, not one folder each.
func Portcullis(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("portcullis-testbin-%d", os.Getuid()))
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("portcullis.%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, "./cmd/portcullis")
		cmd.Dir = RepoRoot()
		if out, err = cmd.CombinedOutput(); err != nil {
			return
		}
		path = filepath.Join(dir, "portcullis")
		err = os.Rename(tmp, path)
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
