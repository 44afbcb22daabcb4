package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assetFS embed.FS

type asset struct {
	body  []byte
	ctype string
	hash  string // hex, the first 16 digits of the content's SHA-256
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// csp allows the page nothing but its own origin: no inline script or
// style, no third-party anything, not framed (the page can drain backends).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var load = sync.OnceValue(func() map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		m[strings.TrimPrefix(p, "assets/")] = &asset{body: b, ctype: ct}
		return nil
	})
	if err != nil {
		panic("dashboard: embedded assets: " + err.Error())
	}
	for _, a := range m {
		a.hash = contentHash(a.body)
	}
	// The page names its assets with their content hash (app.js?v=…), so
	// a browser may keep them for a year and still never runs a stale
	// script after an upgrade.
	idx := m["index.html"]
	for name, a := range m {
		if name == "index.html" {
			continue
		}
		ref := []byte(`"assets/` + name + `"`)
		idx.body = bytes.ReplaceAll(idx.body, ref, []byte(`"assets/`+name+`?v=`+a.hash+`"`))
	}
	idx.hash = contentHash(idx.body)
	return m
})

func contentHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// Handler serves the dashboard: the page at / and its embedded files under
// /assets/. Mount it on the admin mux for "GET /{$}" and "GET /assets/";
// the page reads GET /api/v1/dashboard (relative to where it is served).
func Handler() http.Handler {
	assets := load()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var a *asset
		immutable := false
		switch {
		case r.URL.Path == "/":
			a = assets["index.html"]
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("X-Frame-Options", "DENY")
		case strings.HasPrefix(r.URL.Path, "/assets/"):
			a = assets[strings.TrimPrefix(r.URL.Path, "/assets/")]
			immutable = a != nil && r.URL.Query().Get("v") == a.hash
		}
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", `"`+a.hash+`"`)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if immutable {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			// Revalidate every time: a 304 when the ETag still matches.
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
