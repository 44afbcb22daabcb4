package main

import (
	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/docs"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Tools for writing config files",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the config file's JSON Schema (for editors and linters)",
		Long: `Print the JSON Schema (draft 2020-12) of the config file, generated from
the same Go types as docs/configuration.md. Editors with a YAML language
server complete keys and flag unknown ones with it (docs/editors.md):

  portcullis config schema > /etc/portcullis/portcullis.schema.json

and as the first line of the config file:

  # yaml-language-server: $schema=/etc/portcullis/portcullis.schema.json

The schema checks keys, types and fixed value sets; 'portcullis validate'
remains the full check (references between sections, files, addresses).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(docs.ConfigSchema)
			return err
		},
	})
	return cmd
}
