// Command candidate runs only the L7 engine from a Portcullis config file,
// for bench/l7/run.sh when the full daemon (./cmd/portcullis) does not build,
// and for profiling the engine under load (-pprof). Same config, same
// engine, no admin API or L4 dataplane. Not a product: the daemon is.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // -pprof: profiles of the engine under load
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7"
)

func main() {
	path := flag.String("config", "", "config file")
	pprof := flag.String("pprof", "", "serve net/http/pprof on this address (profiling only)")
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
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Shutdown(ctx)
}
