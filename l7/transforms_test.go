package l7

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Tests of issue #8 through real sockets: client → proxy → upstream.

// plainClient sends requests without adding or decoding an encoding.
var plainClient = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}

func decode(t testing.TB, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "":
		return b
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		if err == nil {
			defer d.Close()
			r = d
		}
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return out
}

func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","tags":["a","b"]}`, i, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

const compressRoute = "    - {name: all, pool: p, compression: {}}\n"

func get(t testing.TB, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	return do(t, "GET", url, hdr, nil)
}

func do(t testing.TB, method, url string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestCompressionIsNegotiatedFromAcceptEncoding(t *testing.T) {
	body := jsonBody(4096)
	var gotAE []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAE = r.Header["Accept-Encoding"]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Vary", "Origin")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer up.Close()
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: compressRoute})
	for _, tc := range []struct {
		ae, want string
	}{
		{"", ""},
		{"gzip", "gzip"},
		{"br", "br"},
		{"zstd", "zstd"},
		{"gzip, deflate, br, zstd", "zstd"},
		{"gzip, br", "br"},
		{"gzip;q=1, br;q=0.5, zstd;q=0.1", "gzip"},
		{"*", "zstd"},
		{"*;q=0.2, gzip;q=0.9", "gzip"},
		{"identity;q=0, br", "br"},
		{"gzip;q=0, br;q=0, zstd;q=0", ""},
		{"br;q=0.5, identity", ""},
		{"deflate", ""},
	} {
		t.Run("Accept-Encoding "+strconv.Quote(tc.ae), func(t *testing.T) {
			hdr := map[string]string{}
			if tc.ae != "" {
				hdr["Accept-Encoding"] = tc.ae
			}
			resp, b := get(t, "http://"+addr+"/x", hdr)
			if ce := resp.Header.Get("Content-Encoding"); ce != tc.want {
				t.Fatalf("Content-Encoding %q, want %q", ce, tc.want)
			}
			if !bytes.Equal(decode(t, tc.want, b), body) {
				t.Fatal("decoded body differs from the upstream's")
			}
			if v := resp.Header.Values("Vary"); len(v) != 2 || v[0] != "Origin" || v[1] != "Accept-Encoding" {
				t.Errorf("Vary %q, want [Origin Accept-Encoding]", v)
			}
			wantTag := `"v1"`
			if tc.want != "" {
				wantTag = `W/"v1"`
				if resp.ContentLength != int64(len(b)) || len(b) >= len(body) {
					t.Errorf("Content-Length %d for %d compressed bytes (of %d)", resp.ContentLength, len(b), len(body))
				}
			}
			if et := resp.Header.Get("Etag"); et != wantTag {
				t.Errorf("ETag %s, want %s", et, wantTag)
			}
			if len(gotAE) != 0 {
				t.Errorf("the upstream was sent Accept-Encoding %q", gotAE)
			}
		})
	}
}

// rawUpstream answers every request on a keep-alive connection with the
// bytes of resp(path).
func rawUpstream(t testing.TB, resp func(method, path string) string) string {
	return serveConns(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) == 2 {
					break
				}
			}
			if len(f) < 2 {
				return
			}
			if _, err := io.WriteString(c, resp(f[0], f[1])); err != nil {
				return
			}
		}
	})
}

func TestCompressionSkipRules(t *testing.T) {
	big := strings.Repeat("compressible text ", 200)
	head := func(status string, fields ...string) string {
		return "HTTP/1.1 " + status + "\r\n" + strings.Join(fields, "\r\n") + "\r\n"
	}
	withBody := func(status, body string, fields ...string) string {
		return head(status, append(fields, "Content-Length: "+strconv.Itoa(len(body)))...) + "\r\n" + body
	}
	responses := map[string]string{
		"/encoded":      withBody("200 OK", big, "Content-Type: text/plain", "Content-Encoding: br"),
		"/png":          withBody("200 OK", big, "Content-Type: image/png"),
		"/no-type":      withBody("200 OK", big),
		"/small":        withBody("200 OK", "tiny", "Content-Type: text/plain"),
		"/small-chunks": head("200 OK", "Content-Type: text/plain", "Transfer-Encoding: chunked") + "\r\n4\r\ntiny\r\n0\r\n\r\n",
		"/204":          head("204 No Content", "Content-Type: text/plain") + "\r\n",
		"/304":          head("304 Not Modified", "Content-Type: text/plain", "Etag: \"x\"") + "\r\n",
		"/no-transform": withBody("200 OK", big, "Content-Type: text/plain", "Cache-Control: public, no-transform"),
		"/range":        withBody("206 Partial Content", big, "Content-Type: text/plain", "Content-Range: bytes 0-3599/9000"),
		"/ok":           withBody("200 OK", big, "Content-Type: text/plain; charset=utf-8"),
	}
	up := rawUpstream(t, func(_, path string) string { return responses[path] })
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: compressRoute})
	for _, tc := range []struct {
		name, method, path string
		compressed         bool
		wantLen            int
	}{
		{"a response already encoded passes", "GET", "/encoded", false, len(big)},
		{"a type not in the list passes", "GET", "/png", false, len(big)},
		{"a response without a type passes", "GET", "/no-type", false, len(big)},
		{"a body under min_size by Content-Length passes", "GET", "/small", false, 4},
		{"a body under min_size without a length passes with its length", "GET", "/small-chunks", false, 4},
		{"204 passes", "GET", "/204", false, 0},
		{"304 passes", "GET", "/304", false, 0},
		{"no-transform passes", "GET", "/no-transform", false, len(big)},
		{"a range passes", "GET", "/range", false, len(big)},
		{"HEAD passes", "HEAD", "/ok", false, -1},
		{"the control case is compressed", "GET", "/ok", true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, tc.method, "http://"+addr+tc.path, map[string]string{"Accept-Encoding": "gzip"}, nil)
			ce := resp.Header.Get("Content-Encoding")
			if tc.compressed != (ce == "gzip") {
				t.Fatalf("Content-Encoding %q (compressed: %v)", ce, tc.compressed)
			}
			if tc.wantLen >= 0 && len(b) != tc.wantLen {
				t.Errorf("%d body bytes, want %d", len(b), tc.wantLen)
			}
			if tc.path == "/small-chunks" && resp.ContentLength != 4 {
				t.Errorf("Content-Length %d, want 4", resp.ContentLength)
			}
			if tc.method == "HEAD" && resp.ContentLength != int64(len(big)) {
				t.Errorf("HEAD Content-Length %d, want %d", resp.ContentLength, len(big))
			}
		})
	}
}

func TestAnEventStreamArrivesEventByEventThroughGzip(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer up.Close()
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: compressRoute})
	req, _ := http.NewRequest("GET", "http://"+addr+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("Content-Encoding %q", ce)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(zr)
	for i := range 3 {
		// The upstream writes the next event only once this one has
		// arrived: without a flush through the encoder this would hang.
		got := make(chan string, 1)
		go func() {
			line, _ := br.ReadString('\n')
			br.ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if want := fmt.Sprintf("data: event %d\n", i); line != want {
				t.Fatalf("got %q, want %q", line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive: not flushed through the encoder", i)
		}
		next <- struct{}{}
	}
}

func TestBigBodiesStreamCompressed(t *testing.T) {
	body := jsonBody(3 << 20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 100_000)
			w.Write(rest[:n])
			rest = rest[n:]
		}
	}))
	defer up.Close()
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: compressRoute})
	for _, path := range []string{"/length", "/chunked"} {
		for _, enc := range []string{"gzip", "br", "zstd"} {
			resp, b := get(t, "http://"+addr+path, map[string]string{"Accept-Encoding": enc})
			if ce := resp.Header.Get("Content-Encoding"); ce != enc {
				t.Fatalf("%s %s: Content-Encoding %q", path, enc, ce)
			}
			if resp.ContentLength != -1 {
				t.Errorf("%s %s: a streamed body has Content-Length %d", path, enc, resp.ContentLength)
			}
			if !bytes.Equal(decode(t, enc, b), body) {
				t.Fatalf("%s %s: decoded body differs", path, enc)
			}
		}
	}
}

func TestJSONBodiesAreTransformed(t *testing.T) {
	respBody := `{"user":{"name":"Ann","password":"x"},"items":[{"id":1,"secret":true}],"keep":1}`
	invalid := `{"user": broken`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/resp/json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, respBody)
		case "/resp/invalid":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, invalid)
		case "/resp/text":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, respBody)
		case "/resp/big":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(jsonBody(3000))))
			w.Write(jsonBody(3000))
		default:
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Header().Set("X-Got-Length", strconv.FormatInt(r.ContentLength, 10))
			w.Write(b)
		}
	}))
	defer up.Close()
	routes := `    - name: all
      pool: p
      match: {path_template: "/{kind}/{name}"}
      body_transform:
        max_bytes: 2048
        request:
          rename: [{from: user.name, to: user.full_name}]
          remove: [user.password, "items.0.secret"]
          set:
            - {path: meta.client, value: "{client_ip}"}
            - {path: meta.kind, value: "{path.kind}"}
            - {path: meta.n, json: "7"}
        response:
          rename: [{from: user.name, to: user.full_name}]
          remove: [user.password, "items.0.secret"]
          set: [{path: meta.request_id, value: "{request_id}"}]
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	json := map[string]string{"Content-Type": "application/json", "X-Request-Id": "rid-1"}
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		want               string
	}{
		{"a JSON request body is renamed, removed and set", "POST", "/req/echo", json, respBody,
			`{"user":{"full_name":"Ann"},"items":[{"id":1}],"keep":1,"meta":{"client":"127.0.0.1","kind":"req","n":7}}`},
		{"a non-JSON request body is untouched", "POST", "/req/echo", map[string]string{"Content-Type": "text/plain"}, respBody, respBody},
		{"an invalid JSON request body is forwarded intact", "POST", "/req/echo", json, invalid, invalid},
		{"a request body over max_bytes passes", "POST", "/req/echo", json, string(jsonBody(3000)), string(jsonBody(3000))},
		{"a JSON response is transformed", "GET", "/resp/json", json, "",
			`{"user":{"full_name":"Ann"},"items":[{"id":1}],"keep":1,"meta":{"request_id":"rid-1"}}`},
		{"a non-JSON response is untouched", "GET", "/resp/text", nil, "", respBody},
		{"an invalid JSON response keeps the upstream's body", "GET", "/resp/invalid", nil, "", invalid},
		{"a response over max_bytes passes", "GET", "/resp/big", nil, "", string(jsonBody(3000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			resp, b := do(t, tc.method, "http://"+addr+tc.path, tc.hdr, body)
			if string(b) != tc.want {
				t.Fatalf("got  %s\nwant %s", b, tc.want)
			}
			if resp.ContentLength != int64(len(b)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(b))
			}
			if gl := resp.Header.Get("X-Got-Length"); gl != "" && gl != strconv.Itoa(len(b)) {
				t.Errorf("the upstream was sent Content-Length %s for %d bytes", gl, len(b))
			}
		})
	}
}

func TestAChunkedJSONRequestIsTransformedOrPassedWhole(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Write(b)
	}))
	defer up.Close()
	routes := `    - name: all
      pool: p
      body_transform: {max_bytes: 100, request: {remove: [a]}}
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	send := func(body string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", io.MultiReader(strings.NewReader(body))) // no length: chunked
		req.Header.Set("Content-Type", "application/json")
		resp, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, got := send(`{"a":1,"b":2}`)
	if got != `{"b":2}` || resp.Header.Get("X-Got-Length") != "7" {
		t.Errorf("small chunked body: got %s with length %s", got, resp.Header.Get("X-Got-Length"))
	}
	big := `{"a":"` + strings.Repeat("x", 300) + `"}`
	if _, got := send(big); got != big {
		t.Errorf("a chunked body over max_bytes was changed or cut: %d bytes", len(got))
	}
}

func TestAnOversizedJSONRequestIsRefusedWhenConfigured(t *testing.T) {
	rec, up := recordingUpstream(t, "")
	routes := `    - name: all
      pool: p
      body_transform: {max_bytes: 10, refuse_oversized: true, request: {remove: [a]}}
`
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: routes})
	resp, _ := do(t, "POST", "http://"+addr+"/", map[string]string{"Content-Type": "application/json"}, []byte(`{"a":"0123456789"}`))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || rec.count() != 0 {
		t.Fatalf("status %d, upstream saw %d requests", resp.StatusCode, rec.count())
	}
}

func TestATransformedRequestBodyIsSentAgainOnARetry(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, "fail:"+string(b))
		mu.Unlock()
		w.WriteHeader(503)
	}))
	defer fail.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, "ok:"+string(b))
		mu.Unlock()
	}))
	defer ok.Close()
	routes := `    - name: all
      pool: p
      body_transform: {request: {set: [{path: x, json: "1"}]}}
`
	pool := "      algorithm: round_robin\n      retries: {attempts: 2, on: [gateway-error]}\n"
	_, addr := startProxy(t, []string{upstreamAddr(fail), upstreamAddr(ok)}, proxyOpts{routes: routes, pool: pool})
	for range 2 {
		mu.Lock()
		bodies = nil
		mu.Unlock()
		resp, _ := do(t, "PUT", "http://"+addr+"/", map[string]string{"Content-Type": "application/json"}, []byte(`{}`))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d after %q", resp.StatusCode, bodies)
		}
		mu.Lock()
		for _, b := range bodies {
			if !strings.HasSuffix(b, `:{"x":1}`) {
				t.Errorf("an attempt sent %q", b)
			}
		}
		mu.Unlock()
	}
}

func TestATransformedResponseIsCompressed(t *testing.T) {
	body := jsonBody(4096)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer up.Close()
	routes := `    - name: all
      pool: p
      compression: {}
      body_transform: {response: {remove: [items]}, request: {remove: [a]}}
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	resp, b := get(t, "http://"+addr+"/", map[string]string{"Accept-Encoding": "gzip"})
	// {} is under min_size once transformed: sent as it is.
	if ce := resp.Header.Get("Content-Encoding"); ce != "" || string(b) != `{}` {
		t.Fatalf("Content-Encoding %q, body %q", ce, b)
	}
}

func TestAShortBodyOfUnknownLengthIsCompressedInOneGo(t *testing.T) {
	big := strings.Repeat("compressible text ", 200)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(big)), 16) + "\r\n" + big + "\r\n0\r\n\r\n"
	up := rawUpstream(t, func(_, _ string) string { return resp })
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: compressRoute})
	r, b := get(t, "http://"+addr+"/", map[string]string{"Accept-Encoding": "zstd"})
	if r.Header.Get("Content-Encoding") != "zstd" || r.ContentLength != int64(len(b)) {
		t.Fatalf("Content-Encoding %q, Content-Length %d for %d bytes", r.Header.Get("Content-Encoding"), r.ContentLength, len(b))
	}
	if string(decode(t, "zstd", b)) != big {
		t.Fatal("decoded body differs")
	}
}

// BenchmarkCompression16KiB is a 16 KiB JSON answer through the proxy
// (lean HTTP/1.1 server, keep-alive) for each coding; identity is the
// same route for a client that accepts none.
func BenchmarkCompression16KiB(b *testing.B) {
	body := jsonBody(16 << 10)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	up := fixedUpstream(b, []byte(resp))
	p, _ := startProxy(b, []string{up}, proxyOpts{routes: compressRoute})
	addr := startLean(b, p)
	for _, enc := range []string{"identity", "gzip", "br", "zstd"} {
		b.Run(enc, func(b *testing.B) {
			rc := newRawClient(b, addr)
			rc.req = []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: " + enc + "\r\n\r\n")
			benchRequests(b, rc)
		})
	}
}

// BenchmarkJSONTransform16KiB is a 16 KiB JSON answer with a rename, a
// remove and a templated set.
func BenchmarkJSONTransform16KiB(b *testing.B) {
	body := jsonBody(16 << 10)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	up := fixedUpstream(b, []byte(resp))
	routes := `    - name: all
      pool: p
      body_transform: {response: {rename: [{from: items.0.name, to: first}], remove: [items.1], set: [{path: rid, value: "{request_id}"}]}}
`
	p, _ := startProxy(b, []string{up}, proxyOpts{routes: routes})
	rc := newRawClient(b, startLean(b, p))
	benchRequests(b, rc)
}

func TestBothFeaturesOverHTTP2(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Got-Length", strconv.FormatInt(r.ContentLength, 10))
		// The upstream's answer: what it got, plus padding to compress.
		fmt.Fprintf(w, `{"got":%s,"pad":%q}`, b, strings.Repeat("p", 2000))
	})
	up := httptest.NewUnstartedServer(h)
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	defer up.Close()
	routes := `    - name: all
      pool: p
      compression: {}
      body_transform:
        request: {set: [{path: added, json: "true"}]}
        response: {rename: [{from: got.a, to: a}]}
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes, pool: "      protocol: " + protoH2C + "\n", lis: ", h2c: true"})
	tr := &http.Transport{DisableCompression: true, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr}
	req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "zstd")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("the client spoke %s", resp.Proto)
	}
	if resp.Header.Get("Content-Encoding") != "zstd" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	want := `{"got":{"added":true},"pad":"` + strings.Repeat("p", 2000) + `","a":1}`
	if got := string(decode(t, "zstd", b)); got != want {
		t.Fatalf("got %.60s…", got)
	}
	if gl := resp.Header.Get("X-Got-Length"); gl != strconv.Itoa(len(`{"a":1,"added":true}`)) {
		t.Errorf("the upstream got Content-Length %s", gl)
	}
}

// maxAllocsCompressed is the budget of a 16 KiB answer compressed in one
// go with the lean server: maxAllocsLean plus the compressed
// Content-Length (its string and its slice). Encoders and buffers are
// pooled.
const maxAllocsCompressed = maxAllocsLean + 2

func TestAllocationBudgetOfACompressedResponse(t *testing.T) {
	skipAllocMeasurement(t)
	body := jsonBody(16 << 10)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	p, _ := startProxy(t, []string{fixedUpstream(t, []byte(resp))}, proxyOpts{routes: compressRoute})
	addr := startLean(t, p)
	for _, enc := range []string{"gzip", "br", "zstd"} {
		rc := newRawClient(t, addr)
		rc.req = []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: " + enc + "\r\n\r\n")
		n := allocsPerRequest(t, rc, 50, 300, 0)
		t.Logf("%s: %.1f allocations per request", enc, n)
		if n > maxAllocsCompressed {
			t.Errorf("%s: %.1f allocations per request, budget %d", enc, n, maxAllocsCompressed)
		}
	}
}

func TestACachedAnswerIsStoredPlainAndServedTransformedAndCompressed(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	doc := `{"secret":1,"items":"` + strings.Repeat("x", 3000) + `"}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("the upstream was sent Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		io.WriteString(w, doc)
	}))
	defer up.Close()
	routes := `    - name: all
      pool: p
      cache: {}
      compression: {}
      body_transform: {response: {remove: [secret], set: [{path: rid, value: "{request_id}"}]}}
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	for i, enc := range []string{"gzip", "zstd", "", "br"} {
		rid := "req-" + strconv.Itoa(i)
		hdr := map[string]string{"X-Request-Id": rid}
		if enc != "" {
			hdr["Accept-Encoding"] = enc
		}
		resp, b := get(t, "http://"+addr+"/doc", hdr)
		if ce := resp.Header.Get("Content-Encoding"); ce != enc {
			t.Fatalf("request %d: Content-Encoding %q, want %q", i, ce, enc)
		}
		want := `{"items":"` + strings.Repeat("x", 3000) + `","rid":"` + rid + `"}`
		if got := string(decode(t, enc, b)); got != want {
			t.Fatalf("request %d: got %.40s…", i, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("the upstream was asked %d times, want 1 (one stored identity answer for every coding)", hits)
	}
}
