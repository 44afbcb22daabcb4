package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4/decap"
)

func newDecapCmd() *cobra.Command {
	var (
		ifname, mode, pinDir, metrics string
		allow, local                  []string
		stats, asJSON                 bool
		guePort                       uint16
	)
	cmd := &cobra.Command{
		Use:   "decap --interface IF --allow CIDR [--allow CIDR ...] | decap --stats --interface IF",
		Short: "Run the decapsulation program on a backend of ipip/gue VIPs",
		Long: `On a backend of VIPs with forwarding: ipip (or gue, with --gue-port), attach
the decap XDP program (bpf/xdp_decap.c) to the interface the load balancers'
packets arrive on. It strips the outer IPv4/IPv6 header of IP-in-IP (and
IP-in-UDP) packets addressed to this host
and passes the client's packet to the local stack; hold the VIP on lo
(ip addr add VIP/32 dev lo) and the server answers the client directly.
Packets whose outer source is not in the --allow CIDRs (the load balancers'
l4.encap_source_v4/v6 prefixes) are dropped and counted.

It runs until SIGINT/SIGTERM; the program detaches when it exits. Counters:
--metrics HOST:PORT serves them as Prometheus metrics (portcullis_decap_*),
and "portcullis decap --stats --interface IF" reads them from a running one
(pinned under /sys/fs/bpf/portcullis/decap, mounted if needed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ifname == "" {
				return errors.New("decap: --interface is required")
			}
			if pinDir == "" {
				pinDir = decap.DefaultPinDir(ifname)
			}
			if stats {
				st, err := decap.ReadPinnedStats(pinDir)
				if err != nil {
					return err
				}
				return printDecapStats(cmd.OutOrStdout(), st, asJSON)
			}
			cfg := decap.Config{Interface: ifname, Mode: mode, GUEPort: guePort}
			for _, a := range allow {
				// The balancers' l4.encap_source_v4/v6, read as they are.
				p, err := config.ParseEncapSource(a)
				if err != nil {
					return fmt.Errorf("decap: --allow %q: want a CIDR or an address", a)
				}
				cfg.Allow = append(cfg.Allow, p)
			}
			for _, a := range local {
				addr, err := netip.ParseAddr(a)
				if err != nil {
					return fmt.Errorf("decap: --local %q: %w", a, err)
				}
				cfg.Local = append(cfg.Local, addr.Unmap())
			}
			return runDecap(cmd.Context(), cfg, pinDir, metrics)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ifname, "interface", "i", "", "interface the encapsulated packets arrive on")
	f.StringVar(&mode, "xdp-mode", "auto", "auto (native, falling back to generic), native or generic")
	f.StringArrayVar(&allow, "allow", nil, "load balancer outer source CIDR (repeatable; required)")
	f.StringArrayVar(&local, "local", nil, "outer destination address that is this host's (repeatable; default: the interface's addresses)")
	f.Uint16Var(&guePort, "gue-port", 0, "also take GUE (IP in UDP) to this port: the load balancers' l4.gue_port (default off)")
	f.StringVar(&metrics, "metrics", "", "serve Prometheus metrics on HOST:PORT (/metrics)")
	f.StringVar(&pinDir, "pin-dir", "", "where the counters are pinned (default /sys/fs/bpf/portcullis/decap/<netns>/<interface>)")
	f.BoolVar(&stats, "stats", false, "print the counters of the decap program running on --interface, and exit")
	f.BoolVar(&asJSON, "json", false, "with --stats: print JSON")
	return cmd
}

func runDecap(ctx context.Context, cfg decap.Config, pinDir, metrics string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	p, err := decap.New(cfg, log)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Pin(pinDir); err != nil {
		return err
	}
	if err := p.Attach(); err != nil {
		return err
	}
	if metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(p.Collector())
		ln, err := net.Listen("tcp", metrics)
		if err != nil {
			return fmt.Errorf("decap: metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("decap metrics", "listen", ln.Addr().String())
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	st, _ := p.Stats()
	log.Info("decap stopping", "counters", st)
	return nil
}

func printDecapStats(w io.Writer, st decap.Stats, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := fmt.Fprintf(w, "%-18s %d\n", k, st[k]); err != nil {
			return err
		}
	}
	return nil
}
