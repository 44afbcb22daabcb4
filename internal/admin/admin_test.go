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
		BGP:     &config.BGP{Peers: []config.BGPPeer{{Address: "10.0.0.1", Password: "md5-secret"}, {Address: "10.0.0.2", PasswordFile: "/md5"}}},
	}
	c.L7.Routes = []config.Route{{Name: "open"}, {Name: "api", JWT: &config.JWT{Keys: []config.JWTKey{{Secret: "hmac-secret-0123456789abcdef0123"}, {PEMFile: "/k.pem"}}}}}
	b, err := json.Marshal(redacted(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"admin-secret", c.Cluster.Key, "hmac-secret-0123456789abcdef0123", "md5-secret"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("GET /api/v1/config would show %q", secret)
		}
	}
	if !strings.Contains(string(b), "/k.pem") || !strings.Contains(string(b), "/md5") {
		t.Error("a key file name was redacted too")
	}
	if c.Admin.Token != "admin-secret" || c.Cluster.Key == "REDACTED" || c.L7.Routes[1].JWT.Keys[0].Secret == "REDACTED" || c.BGP.Peers[0].Password == "REDACTED" {
		t.Error("redacting changed the running config")
	}
}
