package main

import "github.com/spf13/cobra"

func newMaglevCmd() *cobra.Command {
	return &cobra.Command{Use: "maglev", Short: "Inspect Maglev tables (explain, table)"}
}
