// Package srchash fingerprints the inputs of bpf2go (C sources, headers,
// and the go:generate lines that carry the compiler flags) so a test can
// tell when the committed objects no longer match them.
package srchash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// OutputFile is the generated Go file that records the fingerprint.
const OutputFile = "source_hash.go"

// Sum returns the hex SHA-256 over the names and contents of every .c and
// .h file in dir and of bpf.go (which holds the bpf2go flags), in name
// order.
func Sum(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("srchash: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(n, ".c") || strings.HasSuffix(n, ".h") || n == "bpf.go") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", fmt.Errorf("srchash: %w", err)
		}
		// Length-prefix both parts so no concatenation of files can
		// collide with another.
		fmt.Fprintf(h, "%d:%s\n%d:", len(n), n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
