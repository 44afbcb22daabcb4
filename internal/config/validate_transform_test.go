package config

import (
	"strings"
	"testing"
)

func TestTransformErrorsNameTheirKeyPath(t *testing.T) {
	tests := []struct {
		name, route, wantPath, wantMsg string
	}{
		{"an unknown encoding", "    - {name: x, pool: p, compression: {encodings: [deflate]}}\n", "l7.routes[1].compression.encodings[0]", "zstd, br or gzip"},
		{"an encoding listed twice", "    - {name: x, pool: p, compression: {encodings: [gzip, br, gzip]}}\n", "l7.routes[1].compression.encodings[2]", "twice"},
		{"a negative min_size", "    - {name: x, pool: p, compression: {min_size: -1}}\n", "l7.routes[1].compression.min_size", "negative"},
		{"a content type without a slash", "    - {name: x, pool: p, compression: {content_types: [json]}}\n", "l7.routes[1].compression.content_types[0]", "type/subtype"},
		{"a transform with no side", "    - {name: x, pool: p, body_transform: {max_bytes: 10}}\n", "l7.routes[1].body_transform", "request or response"},
		{"an empty change list", "    - {name: x, pool: p, body_transform: {request: {}}}\n", "l7.routes[1].body_transform.request", "no rename"},
		{"an empty path segment", "    - {name: x, pool: p, body_transform: {request: {remove: [a..b]}}}\n", "l7.routes[1].body_transform.request.remove[0]", "empty segment"},
		{"a rename into itself", "    - {name: x, pool: p, body_transform: {response: {rename: [{from: a, to: a.b}]}}}\n", "l7.routes[1].body_transform.response.rename[0].to", "overlap"},
		{"a rename over its parent", "    - {name: x, pool: p, body_transform: {response: {rename: [{from: a.b, to: a}]}}}\n", "l7.routes[1].body_transform.response.rename[0].to", "overlap"},
		{"a set takes one value", "    - {name: x, pool: p, body_transform: {request: {set: [{path: a, value: v, json: '1'}]}}}\n", "l7.routes[1].body_transform.request.set[0]", "exactly one"},
		{"json must be JSON", "    - {name: x, pool: p, body_transform: {request: {set: [{path: a, json: '{a'}]}}}\n", "l7.routes[1].body_transform.request.set[0].json", "not a JSON value"},
		{"a template names known placeholders", "    - {name: x, pool: p, body_transform: {request: {set: [{path: a, value: '{nope}'}]}}}\n", "l7.routes[1].body_transform.request.set[0].value", "unknown placeholder"},
		{"a template's path parameter must exist", "    - {name: x, pool: p, match: {path_template: '/u/{id}'}, body_transform: {request: {set: [{path: a, value: '{path.name}'}]}}}\n", "l7.routes[1].body_transform.request.set[0].value", "no path parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedAt(t, "t.yaml", withRoute(tt.route), tt.wantPath, tt.wantMsg, false)
		})
	}
}

func TestTransformDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withRoute("    - {name: x, pool: p, match: {path_template: '/u/{id}'}, compression: {}, body_transform: {request: {set: [{path: a, value: '{path.id}'}]}}}\n")))
	if err != nil {
		t.Fatal(err)
	}
	r := c.L7.Routes[1]
	if cmp := r.Compression; strings.Join(cmp.Encodings, ",") != "zstd,br,gzip" || cmp.MinSize != 1024 || len(cmp.ContentTypes) != len(DefaultCompressibleTypes) {
		t.Errorf("compression defaults: %+v", cmp)
	}
	if r.BodyTransform.MaxBytes != 1<<20 {
		t.Errorf("max_bytes default %d", r.BodyTransform.MaxBytes)
	}
}
