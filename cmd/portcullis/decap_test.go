package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/l4/decap"
)

func TestDecapRefusesBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"decap"}, "--interface is required"},
		{[]string{"decap", "-i", "lo", "--allow", "not-a-cidr"}, "want a CIDR or an address"},
		{[]string{"decap", "-i", "lo", "--allow", "10.0.0.0/8", "--local", "nope"}, "--local"},
		{[]string{"decap", "-i", "lo", "--stats", "--pin-dir", t.TempDir()}, "no running decap program"},
	} {
		root := newRootCmd()
		root.SetArgs(c.args)
		root.SetOut(&bytes.Buffer{})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}

func TestDecapStatsPrinting(t *testing.T) {
	var b bytes.Buffer
	if err := printDecapStats(&b, decap.Stats{"decap_v4": 3, "drop_not_allowed": 1}, false); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "decap_v4           3\ndrop_not_allowed   1\n" {
		t.Errorf("got %q", got)
	}
	b.Reset()
	if err := printDecapStats(&b, decap.Stats{"decap_v4": 3}, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"decap_v4": 3`) {
		t.Errorf("json: %q", b.String())
	}
}
