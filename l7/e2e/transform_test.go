package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestCompressionAndJSONTransformThroughTheDaemon runs issue #8's route keys
// in `portcullis run`: a JSON answer is transformed, then gzipped for a
// client that asks for it, and a JSON request body is transformed on its
// way upstream.
func TestCompressionAndJSONTransformThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	items := strings.Repeat(`{"name":"item","secret":"s"},`, 100)
	doc := `{"items":[` + strings.TrimSuffix(items, ",") + `],"internal":true}`
	up := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			w.Write(b)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		io.WriteString(w, doc)
	})
	port := freePort(t)
	startDaemon(t, dir, fmt.Sprintf(`l7:
  listeners:
    - {name: web, address: "127.0.0.1:%d"}
  pools:
    - {name: api, endpoints: [{address: "%s"}]}
  routes:
    - name: api
      pool: api
      match: {path_template: "/things/{id}"}
      compression: {encodings: [gzip]}
      body_transform:
        request:
          set: [{path: thing, value: "{path.id}"}]
        response:
          remove: [internal]
`, port, up))
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	base := fmt.Sprintf("http://127.0.0.1:%d/things/42", port)

	req, _ := http.NewRequest("GET", base, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("Content-Encoding %q, Vary %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if want := strings.Replace(doc, `,"internal":true`, "", 1); string(plain) != want {
		t.Fatalf("got %.80s…, want %.80s…", plain, want)
	}

	resp, err = client.Post(base, "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"a":1,"thing":"42"}` {
		t.Fatalf("the upstream got %s", body)
	}
}
