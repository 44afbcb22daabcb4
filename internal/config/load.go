package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Load reads, decodes, defaults and validates the file at path. On failure
// the error is an Errors listing every problem with its file:line:column.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, src)
}

// Parse is Load for bytes already read; path names them in errors and anchors
// relative file references.
func Parse(path string, src []byte) (*Config, error) {
	c := &Config{Path: path}
	c.Digest = DigestOf(src)
	d, err := decodeYAML(path, src, c)
	if err != nil {
		return nil, Errors{err.(Error)}
	}
	c.applyDefaults()
	c.resolvePaths()
	v := &validator{c: c, file: path, pos: d.pos, bad: d.bad, errs: d.errs}
	v.validate()
	if len(v.errs) > 0 {
		v.errs.sort()
		return nil, v.errs
	}
	return c, nil
}

// AdminToken returns the admin bearer token, read from token_file when set.
// An empty token means mutating admin endpoints are refused.
func (c *Config) AdminToken() (string, error) {
	if c.Admin.TokenFile == "" {
		return c.Admin.Token, nil
	}
	b, err := os.ReadFile(c.Admin.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// DigestOf is the digest Parse records for a file's bytes.
func DigestOf(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}
