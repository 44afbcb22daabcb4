// Command portcullis is the Portcullis load-balancer daemon and its CLI.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// exitError carries an exit code through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		if es := config.AsErrors(err); es != nil {
			for _, e := range es {
				fmt.Fprintln(os.Stderr, e.Error())
			}
		} else {
			fmt.Fprintln(os.Stderr, "portcullis:", err)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "portcullis",
		Short: "Portcullis: an L4/L7 load-balancer appliance (XDP Maglev fast path, HTTP proxy, HA cluster)",
		Long: `Portcullis runs one daemon per edge node: an XDP program balances VIP traffic
with Maglev consistent hashing and hands HTTP VIPs to the built-in L7 proxy;
nodes share floating VIPs over memberlist.

Start with:  portcullis run --config configs/quickstart.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newValidateCmd(), newConfigCmd(), newVersionCmd(), newStatusCmd(), newMaglevCmd(), newDecapCmd())
	return root
}
