package main

import (
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/daemon"
	"github.com/portcullis-lb/portcullis/l4"
	"github.com/portcullis-lb/portcullis/l4/flowhash"
)

// The maglev commands compute tables with the daemon's own code path (the
// same config → service conversion, the same Maglev and flow hash), so what
// they print is what the XDP program does. They need no root.

func newMaglevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maglev",
		Short: "Inspect the Maglev tables the daemon builds (no root needed)",
	}
	cmd.AddCommand(newMaglevTableCmd(), newMaglevExplainCmd())
	return cmd
}

func loadServices(path string) (*config.Config, []l4.Service, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	svcs, err := daemon.L4Services(c)
	return c, svcs, err
}

func findService(svcs []l4.Service, name string) (*l4.Service, error) {
	var names []string
	for i := range svcs {
		if svcs[i].Name == name || svcs[i].Addr.String() == name {
			return &svcs[i], nil
		}
		names = append(names, svcs[i].Name)
	}
	return nil, fmt.Errorf("no VIP %q in the config (VIPs: %s)", name, strings.Join(names, ", "))
}

func newMaglevTableCmd() *cobra.Command {
	var path, vip string
	cmd := &cobra.Command{
		Use:   "table --config FILE [--vip NAME]",
		Short: "Print each VIP's Maglev slot counts per backend",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, svcs, err := loadServices(path)
			if err != nil {
				return err
			}
			if vip != "" {
				s, err := findService(svcs, vip)
				if err != nil {
					return err
				}
				svcs = []l4.Service{*s}
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for i := range svcs {
				s := &svcs[i]
				t, err := l4.MaglevTable(s, c.L4.MaglevSize, c.L4.HashSeed)
				if err != nil {
					return fmt.Errorf("vip %q: %w", s.Name, err)
				}
				counts := t.Counts(len(s.Backends))
				var total uint64
				for _, b := range s.Backends {
					total += uint64(b.Weight)
				}
				fmt.Fprintf(w, "VIP %s  %s  M=%d seed=%d\n", s.Name, endpoint(s), t.Size, c.L4.HashSeed)
				fmt.Fprintln(w, "  backend\taddress\tforwarding\tweight\tslots\tshare\twanted")
				for j, b := range s.Backends {
					wanted := 0.0
					if total > 0 {
						wanted = 100 * float64(b.Weight) / float64(total)
					}
					fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%d\t%.2f%%\t%.2f%%\n", b.Name, b.Addr, b.Mode, b.Weight, counts[j],
						100*float64(counts[j])/float64(t.Size), wanted)
				}
				fmt.Fprintln(w)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file")
	cmd.Flags().StringVar(&vip, "vip", "", "only this VIP (name or address)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func endpoint(s *l4.Service) string {
	proto := "tcp"
	if s.Proto == 17 {
		proto = "udp"
	}
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.Addr, s.Port), proto)
}

func newMaglevExplainCmd() *cobra.Command {
	var path, vip, flow string
	cmd := &cobra.Command{
		Use:   "explain --config FILE --vip NAME --flow SRC:SPORT",
		Short: "Tell which backend a new flow gets, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, svcs, err := loadServices(path)
			if err != nil {
				return err
			}
			s, err := findService(svcs, vip)
			if err != nil {
				return err
			}
			src, err := netip.ParseAddrPort(flow)
			if err != nil {
				return fmt.Errorf("--flow %q: want the client's address and port, e.g. 192.0.2.7:51000 or [2001:db8::7]:51000", flow)
			}
			if src.Addr().Unmap().Is4() != s.Addr.Is4() {
				return fmt.Errorf("--flow %s and VIP %s are of different IP families", src, s.Addr)
			}
			t, err := l4.MaglevTable(s, c.L4.MaglevSize, c.L4.HashSeed)
			if err != nil {
				return err
			}
			h := flowhash.Hash(c.L4.HashSeed, src.Addr().Unmap(), s.Addr, src.Port(), s.Port, s.Proto)
			slot := uint64(h) % t.Size
			idx := t.Slots[slot]
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "flow     %s → %s\n", src, endpoint(s))
			fmt.Fprintf(out, "hash     %#08x  (seeded 5-tuple hash, seed %d; the XDP program computes the same)\n", h, c.L4.HashSeed)
			fmt.Fprintf(out, "slot     %d of %d  (hash mod M)\n", slot, t.Size)
			if idx < 0 {
				fmt.Fprintln(out, "backend  none: every backend has weight 0 or is down, so XDP drops new flows for this VIP")
				return nil
			}
			b := s.Backends[idx]
			counts := t.Counts(len(s.Backends))
			fmt.Fprintf(out, "backend  %s (%s, %s", b.Name, b.Addr, b.Mode)
			if b.MAC != nil {
				fmt.Fprintf(out, ", mac %s", b.MAC)
			}
			fmt.Fprintf(out, "), which owns %d slots (%.2f%%)\n", counts[idx], 100*float64(counts[idx])/float64(t.Size))
			fmt.Fprintln(out, "why      a new flow (TCP SYN or the first UDP packet) takes the backend in its slot; later packets")
			fmt.Fprintln(out, "         follow the connection table while that backend is up (even at weight 0, which only")
			fmt.Fprintln(out, "         stops new flows). Every node with the same backends, weights and seed has the same table.")
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file")
	cmd.Flags().StringVar(&vip, "vip", "", "VIP name or address")
	cmd.Flags().StringVar(&flow, "flow", "", "client address:port")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("vip")
	_ = cmd.MarkFlagRequired("flow")
	return cmd
}
