package config

//go:generate go run ./cmd/refdoc . ../../docs/configuration.md
