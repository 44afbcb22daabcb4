package doccheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// The firewall example of docs/operations.md is meant to be copied as is:
// nft must accept it. It is checked (nft -c, nothing applied) in a scratch
// network namespace, so even a bug in nft's check mode cannot touch the
// host's ruleset.
func TestOperationsFirewallExampleIsValidNftables(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed (Debian's nftables package)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: nft -c talks netlink, in a network namespace of its own")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	b, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```nft":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	if len(blocks) == 0 {
		t.Fatal("docs/operations.md has no ```nft block")
	}
	for i, block := range blocks {
		p := filepath.Join(t.TempDir(), "rules.nft")
		if err := os.WriteFile(p, []byte(block), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("unshare", "--net", "nft", "-c", "-f", p).CombinedOutput(); err != nil {
			t.Errorf("nft block %d of docs/operations.md: %v\n%s", i+1, err, out)
		}
	}
}
