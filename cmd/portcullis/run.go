package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/daemon"
)

func newRunCmd() *cobra.Command {
	var opts daemon.Options
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the daemon",
		Long: `Run the daemon with the given config. It reloads the config on SIGHUP, when the
file changes on disk (unless --watch=false), and on POST /api/v1/reload; a
config that fails validation is rejected and the running one keeps serving.
SIGTERM or SIGINT stops accepting, drains in-flight requests for shutdown.drain,
then exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return daemon.Run(context.Background(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.ConfigPath, "config", "c", "", "config file (YAML)")
	cmd.Flags().BoolVar(&opts.WatchConfig, "watch", true, "reload when the config file changes on disk")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
