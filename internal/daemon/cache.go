package daemon

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/portcullis-lb/portcullis/internal/admin"
	"github.com/portcullis-lb/portcullis/l7"
)

// purgeRequest is the body of POST /api/v1/cache/purge: one route's entry
// for a key (host and request target, "example.com/a?b=1"), or every entry
// whose key starts with prefix ("" = the whole route's cache).
type purgeRequest struct {
	Route  string  `json:"route"`
	Key    *string `json:"key"`
	Prefix *string `json:"prefix"`
}

// mountCacheAdmin adds the shared cache's purge endpoint (docs/cache.md);
// like every change through the admin API it needs the admin token.
func (d *Daemon) mountCacheAdmin() {
	d.admin.Handle("POST /api/v1/cache/purge", d.admin.Auth(http.HandlerFunc(d.purgeCache)))
}

func (d *Daemon) purgeCache(w http.ResponseWriter, r *http.Request) {
	var req purgeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		admin.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	if req.Route == "" || (req.Key == nil) == (req.Prefix == nil) {
		admin.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": `give "route" and one of "key" and "prefix"`})
		return
	}
	var n int
	var err error
	if req.Key != nil {
		n, err = d.proxy.PurgeCache(req.Route, *req.Key, "", false)
	} else {
		n, err = d.proxy.PurgeCache(req.Route, "", *req.Prefix, true)
	}
	if errors.Is(err, l7.ErrNoCache) {
		admin.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "route " + req.Route + " has no cache"})
		return
	}
	if err != nil {
		admin.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	d.log.Info("cache purged by the admin API", "route", req.Route, "purged", n, "remote", r.RemoteAddr)
	admin.WriteJSON(w, http.StatusOK, map[string]any{"route": req.Route, "purged": n})
}
