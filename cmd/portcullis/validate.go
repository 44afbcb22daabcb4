package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check a config file and print every error with file:line:column",
		Long: `Decode and validate a config file exactly as the daemon would, without
starting anything. Prints every error found, one per line as
FILE:LINE:COLUMN: KEY.PATH: MESSAGE, and exits 1; exits 0 when the file is valid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := config.Load(path)
			if err != nil {
				for _, e := range config.AsErrors(err) {
					fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
				}
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (node %s, %d VIPs, %d listeners, %d routes, %d pools)\n",
				path, c.Node.Name, len(c.VIPs), len(c.L7.Listeners), len(c.L7.Routes), len(c.L7.Pools))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
