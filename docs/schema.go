// Package docs carries the generated documents the binary serves itself:
// the config file's JSON Schema, printed by `portcullis config schema`.
// internal/config generates it (`go generate ./internal/config/`) and a test
// there keeps it current.
package docs

import _ "embed"

// ConfigSchema is portcullis.schema.json, the JSON Schema (draft 2020-12)
// of the config file.
//
//go:embed portcullis.schema.json
var ConfigSchema []byte
