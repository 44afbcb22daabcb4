package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const schemaPath = "../../" + SchemaFile

func TestTheJSONSchemaIsCurrent(t *testing.T) {
	want, err := JSONSchemaFromDir(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaPath)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with internal/config/types*.go: run `go generate ./internal/config/`", SchemaFile)
	}
}

// compileSchema compiles the committed schema with a validator of its own,
// which also proves it is a valid draft 2020-12 schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "file:///portcullis.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlInstance turns a YAML document into the JSON value a YAML language
// server checks against the schema.
func yamlInstance(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func shippedConfigs(t *testing.T) []string {
	t.Helper()
	var files []string
	filepath.WalkDir("../../configs", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	return files
}

// Every example is valid by the schema (so the schema is not stricter than
// the loader on real files), and names the schema in its first line so an
// editor opened on it completes and checks keys.
func TestEveryShippedConfigMatchesTheSchemaAndNamesIt(t *testing.T) {
	s := compileSchema(t)
	for _, f := range shippedConfigs(t) {
		t.Run(strings.TrimPrefix(f, "../../"), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(yamlInstance(t, src)); err != nil {
				t.Errorf("%v", err)
			}
			rel, _ := filepath.Rel(filepath.Dir(f), schemaPath)
			want := "# yaml-language-server: $schema=" + filepath.ToSlash(rel)
			first, _, _ := strings.Cut(string(src), "\n")
			if first != want {
				t.Errorf("first line is %q, want %q", first, want)
			}
			if _, err := Load(f); err != nil {
				t.Errorf("the loader refuses it:\n%v", err)
			}
		})
	}
}

// The schema refuses the mistakes the loader refuses most often, and
// accepts what the loader accepts in forms an editor might not expect.
func TestTheSchemaJudgesLikeTheLoader(t *testing.T) {
	s := compileSchema(t)
	const vip = "node: {interface: eth0}\nvips:\n  - name: v\n    address: 192.0.2.1\n    port: 80\n    backends: [%s]\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		valid bool
	}{
		{"an empty mapping is valid", "{}\n", true},
		{"an unknown top-level key is refused", "lisener: {}\n", false},
		{"an unknown nested key is refused", "l7: {listeners: [{name: a, address: 127.0.0.1:80, tls_mode: x}]}\n", false},
		{"a string where an integer belongs is refused", "node: {priority: \"100\"}\n", false},
		{"an integer where a string belongs is refused", "node: {name: 7}\n", false},
		{"a value outside a fixed set is refused", "log: {level: verbose}\n", false},
		{"a duration without a unit is refused", "shutdown: {drain: 10}\n", false},
		{"a duration written 0 is valid", "shutdown: {drain: 0}\n", true},
		{"a duration with several units is valid", "shutdown: {drain: 1m30s}\n", true},
		{"a negative duration is refused", "shutdown: {drain: -1s}\n", false},
		{"a priority above 255 is refused", "node: {priority: 256}\n", false},
		{"a uint32 beyond its range is refused", "l4: {hash_seed: 4294967296}\n", false},
		{"a 0 meaning the default is valid", "l7: {listeners: [{name: a, address: 127.0.0.1:80, max_header_bytes: 0}]}\n", true},
		{"a dsr-l2 backend with its MAC is valid", fmt.Sprintf(vip, `{name: b, address: 10.0.0.2, mac: "02:00:00:00:00:02"}`), true},
		{"a dsr-l2 backend without a MAC is refused", fmt.Sprintf(vip, `{name: b, address: 10.0.0.2}`), false},
		{"a local backend without a MAC is valid", fmt.Sprintf(vip, `{name: b, address: 192.0.2.1, forwarding: local}`), true},
		{"a VIP without backends is refused", "vips: [{name: v, address: 192.0.2.1, port: 80, backends: []}]\n", false},
		{"a route without a name is refused", "l7: {routes: [{pool: p}]}\n", false},
		{"a cluster without a key is refused", "cluster: {bind: 10.0.0.1:7946}\n", false},
		{"a cluster with key and key_file is refused", "cluster: {key: a, key_file: b}\n", false},
		{"a health check of a pool and a VIP is refused", "healthchecks: [{name: h, type: tcp, pool: p, vip: v}]\n", false},
		{"a bad name is refused", "l7: {pools: [{name: \"my pool\"}]}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Validate(yamlInstance(t, []byte(tc.yaml)))
			if (err == nil) != tc.valid {
				t.Errorf("schema says valid=%v, want %v: %v", err == nil, tc.valid, err)
			}
			// The loader agrees wherever the verdict is the schema's to give.
			_, lerr := Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(tc.yaml))
			if !tc.valid && lerr == nil {
				t.Errorf("the loader accepts what the schema refuses")
			}
		})
	}
}

// enumSamples put a value into the one key of a small config that a fixed
// set of the schema governs; path is where the validator reports a bad one.
// Every enum of schemaRules needs a sample here, so a value set copied into
// the schema cannot silently differ from the one validation enforces.
var enumSamples = map[string]struct {
	path string
	yaml func(v string) string
}{
	"Log.Level":             {"log.level", sprintf("log: {level: %s}\n")},
	"Log.Format":            {"log.format", sprintf("log: {format: %s}\n")},
	"L4.XDPMode":            {"l4.xdp_mode", sprintf("l4: {xdp_mode: %s}\n")},
	"VIP.Protocol":          {"vips[0].protocol", sprintf("node: {interface: eth0}\nvips: [{name: v, address: 192.0.2.1, port: 53, protocol: %s, backends: [{name: b, address: 192.0.2.1, forwarding: local}]}]\n")},
	"VIPBackend.Forwarding": {"vips[0].backends[0].forwarding", sprintf("node: {interface: eth0}\nvips: [{name: v, address: 192.0.2.1, port: 53, backends: [{name: b, address: 192.0.2.1, forwarding: %s}]}]\n")},
	"Listener.Server":       {"l7.listeners[0].server", sprintf("l7: {listeners: [{name: l, address: 127.0.0.1:8080, server: %s}]}\n")},
	"ListenerTLS.MinVersion": {"l7.listeners[0].tls.min_version", sprintf(
		"l7: {listeners: [{name: l, address: 127.0.0.1:8443, tls: {certificates: [{cert_file: c.pem, key_file: k.pem}], min_version: \"%s\"}}]}\n")},
	"ListenerTLS.ClientAuth": {"l7.listeners[0].tls.client_auth", sprintf(
		"l7: {listeners: [{name: l, address: 127.0.0.1:8443, tls: {certificates: [{cert_file: c.pem, key_file: k.pem}], client_ca_file: ca.pem, client_auth: %s}}]}\n")},
	"Pool.Algorithm": {"l7.pools[0].algorithm", sprintf("l7: {pools: [{name: p, algorithm: %s}]}\n")},
	"Pool.Protocol": {"l7.pools[0].protocol", func(v string) string {
		return fmt.Sprintf("l7: {pools: [{name: p, protocol: %s, tls: {enabled: %v}}]}\n", v, v == "h2")
	}},
	"Sticky.Fallback":            {"l7.pools[0].sticky.fallback", sprintf("l7: {pools: [{name: p, algorithm: sticky, sticky: {fallback: %s}}]}\n")},
	"Retries.On":                 {"l7.pools[0].retries.on[0]", sprintf("l7: {pools: [{name: p, retries: {on: [%s]}}]}\n")},
	"Cluster.Profile":            {"cluster.profile", sprintf("cluster: {key: " + testGossipKey + ", profile: %s}\n")},
	"Witness.Kind":               {"cluster.witness.kind", sprintf("cluster: {key: " + testGossipKey + ", witness: {kind: %s, address: 192.0.2.1}}\n")},
	"HealthCheck.Type":           {"healthchecks[0].type", sprintf("l7: {pools: [{name: p}]}\nhealthchecks: [{name: h, pool: p, type: %s}]\n")},
	"Discovery.Provider":         {"discovery[0].provider", sprintf("l7: {pools: [{name: p}]}\ndiscovery: [{name: d, pool: p, provider: %s}]\n")},
	"Discovery.RecordType":       {"discovery[0].record_type", sprintf("l7: {pools: [{name: p}]}\ndiscovery: [{name: d, pool: p, provider: dns, dns: x.example, port: 80, record_type: %s}]\n")},
	"JWT.Algorithms":             {"l7.routes[0].jwt.algorithms[0]", sprintf(jwtRoute + "algorithms: [%s]}}]}\n")},
	"JWTKey.Algorithm":           {"l7.routes[0].jwt.keys[0].algorithm", sprintf(jwtRoute + "keys: [{secret: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef, algorithm: %s}]}}]}\n")},
	"Aggregate.Merge":            {"l7.routes[0].aggregate.merge", sprintf(aggRoute + "merge: %s}}]}\n")},
	"Aggregate.OnPartialFailure": {"l7.routes[0].aggregate.on_partial_failure", sprintf(aggRoute + "on_partial_failure: %s}}]}\n")},
	"RateLimit.Scope":            {"l7.routes[0].rate_limit.scope", sprintf("cluster: {key: " + testGossipKey + "}\nl7: {listeners: [{name: l, address: 127.0.0.1:8080}], pools: [{name: p}], routes: [{name: r, pool: p, rate_limit: {requests: 1, scope: %s}}]}\n")},
}

const (
	testGossipKey = "MDEyMzQ1Njc4OWFiY2RlZg==" // "0123456789abcdef"
	aggRoute      = "l7: {listeners: [{name: l, address: 127.0.0.1:8080}], pools: [{name: p}], routes: [{name: r, aggregate: {calls: [{name: c, pool: p, path: /x}], "
	jwtRoute      = "l7: {listeners: [{name: l, address: 127.0.0.1:8080}], pools: [{name: p}], routes: [{name: r, pool: p, jwt: {issuer: i, audiences: [a], jwks_file: j.json, "
)

func sprintf(format string) func(string) string {
	return func(v string) string { return fmt.Sprintf(format, v) }
}

func TestSchemaEnumsAgreeWithValidation(t *testing.T) {
	for key, rule := range schemaRules {
		if len(rule.enum) == 0 {
			continue
		}
		sample, ok := enumSamples[key]
		if !ok {
			t.Errorf("%s has a fixed set in the schema but no sample in enumSamples to check it against validation", key)
			continue
		}
		errorsAt := func(v string) []string {
			_, err := Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(sample.yaml(v)))
			var msgs []string
			for _, e := range AsErrors(err) {
				if e.Path == sample.path {
					msgs = append(msgs, e.Msg)
				}
			}
			return msgs
		}
		for _, v := range rule.enum {
			if msgs := errorsAt(v); len(msgs) > 0 {
				t.Errorf("%s: the schema allows %q but validation refuses it: %v", key, v, msgs)
			}
		}
		if msgs := errorsAt("not-in-the-set"); len(msgs) == 0 {
			t.Errorf("%s: validation accepts a value outside the schema's set %v: the sample does not reach %s", key, rule.enum, sample.path)
		}
	}
}
