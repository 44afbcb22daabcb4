package config

//go:generate go run ./cmd/refdoc types.go ../../docs/configuration.md
