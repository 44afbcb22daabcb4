// Command cacheorigin is the upstream of bench/l7/cachehit.sh: a 64-byte
// response that a shared cache may keep for an hour, on one loopback
// address. Benchmark material only.
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:19301", "address (loopback)")
	flag.Parse()
	body := strings.Repeat("c", 63) + "\n"
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Cache-Control"] = []string{"public, max-age=3600"}
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"64"}
		w.Write([]byte(body))
	})))
}
