package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/testbin"
)

func TestEveryShippedConfigValidates(t *testing.T) {
	bin := testbin.Portcullis(t)
	root := testbin.RepoRoot()
	var files []string
	filepath.WalkDir(filepath.Join(root, "configs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			out, err := exec.Command(bin, "validate", "--config", f).CombinedOutput()
			if err != nil {
				t.Errorf("portcullis validate %s: %v\n%s", rel, err, out)
			}
		})
	}
}

func TestValidatePrintsEveryErrorWithItsPositionAndExitsOne(t *testing.T) {
	bin := testbin.Portcullis(t)
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("node:\n  name: n\n  colour: blue\nadmin:\n  listen: 127.0.0.1:70000\n"), 0o644)
	cmd := exec.Command(bin, "validate", "--config", f)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{
		f + `:3:3: node.colour: unknown key "colour"`,
		f + `:5:3: admin.listen: port "70000" is out of range (1-65535)`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionAndHelpWork(t *testing.T) {
	bin := testbin.Portcullis(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "portcullis ") {
		t.Errorf("version: %v %s", err, out)
	}
	out, err = exec.Command(bin, "run", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--config") {
		t.Errorf("run --help: %v %s", err, out)
	}
	out, err = exec.Command(bin, "status", "--admin", "127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no daemon answers on 127.0.0.1:1") {
		t.Errorf("status against nothing: %v %s", err, out)
	}
}
