package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

func TestConfigSchemaPrintsTheCommittedSchema(t *testing.T) {
	bin := testbin.Portcullis(t)
	out, err := exec.Command(bin, "config", "schema").Output()
	if err != nil {
		t.Fatalf("portcullis config schema: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), config.SchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("the output is not %s", config.SchemaFile)
	}
	var doc struct {
		Schema string `json:"$schema"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("not a draft 2020-12 JSON Schema: %v %q", err, doc.Schema)
	}
}
