package bpf

import (
	"testing"

	"github.com/portcullis-lb/portcullis/bpf/internal/srchash"
)

func TestGeneratedObjectsAreFresh(t *testing.T) {
	sum, err := srchash.Sum(".")
	if err != nil {
		t.Fatal(err)
	}
	if sum != SourceHash {
		t.Fatalf("bpf/ C sources or bpf2go flags changed since the objects were generated: run make generate (go generate ./bpf/)\nsources: %s\nrecorded: %s", sum, SourceHash)
	}
}

func TestObjectsLoadAsSpecs(t *testing.T) {
	// Parsing needs no privileges; it catches a truncated or foreign .o.
	spec, err := LoadLB()
	if err != nil {
		t.Fatal(err)
	}
	if spec.Programs["xdp_lb"] == nil {
		t.Fatal("xdp_lb program missing from the LB object")
	}
	if _, err := LoadPass(); err != nil {
		t.Fatal(err)
	}
	dspec, err := LoadDecap()
	if err != nil {
		t.Fatal(err)
	}
	if dspec.Programs["xdp_decap"] == nil {
		t.Fatal("xdp_decap program missing from the Decap object")
	}
}
