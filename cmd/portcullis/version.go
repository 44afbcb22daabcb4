package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "portcullis %s (commit %s, %s %s/%s)\n",
				buildinfo.Version, buildinfo.GetCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
