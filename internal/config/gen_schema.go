package config

// The JSON Schema sits beside the reference it complements; docs/schema.go
// embeds it for `portcullis config schema`.
//go:generate go run ./cmd/schemagen . ../../docs/portcullis.schema.json
