// Command candidate runs only the L7 engine from a Portcullis config file,
// for bench/l7/run.sh when the full daemon (./cmd/portcullis) does not build
// (other subsystems mid-change). Same config, same engine, no admin API or
// L4 dataplane. Not a product: the daemon is.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof: profiles of the engine under load
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7"
)

func main() {
	path := flag.String("config", "", "config file")
	pprof := flag.String("pprof", "", "serve net/http/pprof on this address (profiling only)")
	lean := flag.String("lean-h1", "", "obsolete (l7/listen serves cleartext listeners with the lean server by default): also serve the listener named NAME with a second, unmanaged lean HTTP/1.1 server on ADDR: NAME=ADDR")
	flag.Parse()
	if *pprof != "" {
		go func() { _ = http.ListenAndServe(*pprof, nil) }()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(*path)
	if err != nil {
		log.Error("config", "err", err)
		os.Exit(1)
	}
	var leanName, leanAddr string
	if *lean != "" {
		leanName, leanAddr, _ = strings.Cut(*lean, "=")
		for i := range cfg.L7.Listeners {
			if cfg.L7.Listeners[i].Name == leanName {
				// listen.Set still gets the listener (routes are compiled
				// per listener name) but on a throwaway port; the lean
				// server takes the real address.
				cfg.L7.Listeners[i].Address = "127.0.0.1:0"
			}
		}
	}
	g, err := l7.Compile(cfg)
	if err != nil {
		log.Error("compile", "err", err)
		os.Exit(1)
	}
	p := l7.New(log)
	if err := p.Apply(g, 5*time.Second); err != nil {
		log.Error("apply", "err", err)
		os.Exit(1)
	}
	if leanName != "" {
		ln, err := net.Listen("tcp", leanAddr)
		if err != nil {
			log.Error("lean listener", "err", err)
			os.Exit(1)
		}
		go func() { _ = p.ServeLeanH1(ln, leanName) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Shutdown(ctx)
}
