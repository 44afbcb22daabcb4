package cors

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func policy(c config.CORS) *Policy {
	rt := config.Route{CORS: &c}
	rt.SetDefaults()
	return Compile(rt.CORS)
}

func TestOriginsMatchExactlyOrByWildcardLabels(t *testing.T) {
	p := policy(config.CORS{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org", "http://*.dev.test:8080"}})
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"http://app.example.com", false},
		{"https://app.example.com:8443", false},
		{"https://evilapp.example.com", false},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://example.org", false},
		{"https://.example.org", false},
		{"https://a..example.org", false},
		{"https://evil.com/.example.org", false},
		{"https://evil.com?.example.org", false},
		{"https://a.example.org.evil.com", false},
		{"https://aexample.org", false},
		{"http://x.dev.test:8080", true},
		{"http://x.dev.test", false},
		{"http://x.dev.test:80800", false},
		{"null", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := p.Allowed(tt.origin); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
}

func preflightReq(origin, method, headers string) *http.Request {
	r := httptest.NewRequest("OPTIONS", "http://api.test/orders", nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if method != "" {
		r.Header.Set("Access-Control-Request-Method", method)
	}
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return r
}

func TestPreflightsAreAnsweredForWhatIsAllowed(t *testing.T) {
	p := policy(config.CORS{
		AllowedOrigins: []string{"https://app.example.com"}, AllowedMethods: []string{"GET", "PUT"},
		AllowedHeaders: []string{"Authorization", "Content-Type"}, AllowCredentials: true, MaxAge: config.Duration(10 * time.Minute),
	})
	tests := []struct {
		name       string
		r          *http.Request
		wantStatus int
		wantHeader http.Header
	}{
		{"an allowed method and headers get every CORS field", preflightReq("https://app.example.com", "PUT", "content-type, authorization"), 204, http.Header{
			"Access-Control-Allow-Origin":      {"https://app.example.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Allow-Methods":     {"GET, PUT"},
			"Access-Control-Allow-Headers":     {"content-type, authorization"},
			"Access-Control-Max-Age":           {"600"},
			"Vary":                             {"Origin"},
		}},
		{"another origin is refused without CORS fields", preflightReq("https://evil.test", "PUT", ""), 403, http.Header{"Vary": {"Origin"}}},
		{"a method not allowed is refused", preflightReq("https://app.example.com", "DELETE", ""), 403, http.Header{"Vary": {"Origin"}}},
		{"a header not allowed is refused", preflightReq("https://app.example.com", "GET", "x-secret"), 403, http.Header{"Vary": {"Origin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !IsPreflight(tt.r) {
				t.Fatal("not seen as a preflight")
			}
			h := http.Header{}
			if got := p.Preflight(h, tt.r); got != tt.wantStatus {
				t.Fatalf("status %d", got)
			}
			if !reflect.DeepEqual(h, tt.wantHeader) {
				t.Fatalf("header\n%v\nwant\n%v", h, tt.wantHeader)
			}
		})
	}
	if IsPreflight(preflightReq("https://app.example.com", "", "")) || IsPreflight(preflightReq("", "GET", "")) {
		t.Error("an OPTIONS without Origin or Access-Control-Request-Method is no preflight")
	}
}

func TestActualResponsesCarryTheCORSFields(t *testing.T) {
	tests := []struct {
		name     string
		conf     config.CORS
		origin   string
		upstream http.Header
		want     http.Header
	}{
		{"an allowed origin is named, with credentials and exposed headers",
			config.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true, ExposeHeaders: []string{"X-Total"}},
			"https://app.example.com", http.Header{"Vary": {"Accept-Encoding"}},
			http.Header{"Vary": {"Accept-Encoding", "Origin"}, "Access-Control-Allow-Origin": {"https://app.example.com"},
				"Access-Control-Allow-Credentials": {"true"}, "Access-Control-Expose-Headers": {"X-Total"}}},
		{"an origin not allowed gets only Vary, and the upstream's own CORS fields go",
			config.CORS{AllowedOrigins: []string{"https://app.example.com"}},
			"https://evil.test", http.Header{"Access-Control-Allow-Origin": {"*"}},
			http.Header{"Vary": {"Origin"}}},
		{"a request without Origin still gets Vary: Origin",
			config.CORS{AllowedOrigins: []string{"https://app.example.com"}}, "", http.Header{},
			http.Header{"Vary": {"Origin"}}},
		{"Vary is not repeated",
			config.CORS{AllowedOrigins: []string{"https://app.example.com"}}, "", http.Header{"Vary": {"accept, origin"}},
			http.Header{"Vary": {"accept, origin"}}},
		{"any origin without credentials is * and needs no Vary",
			config.CORS{AllowedOrigins: []string{"*"}}, "https://whoever.test", http.Header{},
			http.Header{"Access-Control-Allow-Origin": {"*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy(tt.conf)
			h := tt.upstream.Clone()
			p.Apply(h, tt.origin)
			if !reflect.DeepEqual(h, tt.want) {
				t.Fatalf("header\n%v\nwant\n%v", h, tt.want)
			}
		})
	}
}

func TestCredentialsAndAWildcardOriginDoNotValidate(t *testing.T) {
	src := `
node: {name: n}
l7:
  listeners: [{name: web, address: "127.0.0.1:8080"}]
  pools: [{name: p, endpoints: [{address: "127.0.0.1:9000"}]}]
  routes:
    - name: r
      pool: p
      cors: {allowed_origins: ["*"], allow_credentials: true, allowed_headers: ["*"]}
    - name: s
      pool: p
      cors: {allowed_origins: ["https://*", "https://a.test/path", "HTTPS://A.TEST", "https://x.*.test"]}
`
	_, err := config.Parse("t.yaml", []byte(src))
	es := config.AsErrors(err)
	want := map[string]bool{
		"l7.routes[0].cors.allowed_origins[0]": true, "l7.routes[0].cors.allowed_headers[0]": true,
		"l7.routes[1].cors.allowed_origins[0]": true, "l7.routes[1].cors.allowed_origins[1]": true,
		"l7.routes[1].cors.allowed_origins[2]": true, "l7.routes[1].cors.allowed_origins[3]": true,
	}
	for _, e := range es {
		if e.Line == 0 {
			t.Errorf("no line: %v", e)
		}
		delete(want, e.Path)
	}
	if len(want) > 0 {
		t.Fatalf("missing errors at %v in:\n%v", want, err)
	}
}
