package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestTheServedConfigCarriesNoSecrets(t *testing.T) {
	c := &config.Config{
		Admin:   config.Admin{Token: "admin-secret"},
		Cluster: &config.Cluster{Key: "Z29zc2lwLWtleS1zZWNyZXQtMzItYnl0ZXMhISE="},
	}
	b, err := json.Marshal(redacted(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"admin-secret", c.Cluster.Key} {
		if strings.Contains(string(b), secret) {
			t.Errorf("GET /api/v1/config would show %q", secret)
		}
	}
	if c.Admin.Token != "admin-secret" || c.Cluster.Key == "REDACTED" {
		t.Error("redacting changed the running config")
	}
}
