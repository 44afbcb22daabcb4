package config

import (
	"os"
	"testing"
)

func TestTheConfigurationReferenceIsCurrent(t *testing.T) {
	want, err := ReferenceFromDir(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil || string(got) != want {
		t.Fatal("docs/configuration.md is out of date with internal/config/types*.go: run `go generate ./internal/config/`")
	}
}
