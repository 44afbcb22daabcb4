package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func newStatusCmd() *cobra.Command {
	var addr, path string
	var raw bool
	cmd := &cobra.Command{
		Use:   "status [--admin HOST:PORT | --config FILE]",
		Short: "Ask a running daemon for its status",
		Long: `Ask the running daemon's admin API (GET /api/v1/status) and print the answer.
The admin address comes from --admin, else from the config's admin.listen,
else the default ` + config.DefaultAdminListen + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				addr = config.DefaultAdminListen
				if path != "" {
					c, err := config.Load(path)
					if err != nil {
						return err
					}
					addr = c.Admin.Listen
				}
			}
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get("http://" + addr + "/api/v1/status")
			if err != nil {
				return fmt.Errorf("no daemon answers on %s: %w", addr, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("admin API %s: %s", resp.Status, bytes.TrimSpace(body))
			}
			if raw {
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			return printStatus(cmd.OutOrStdout(), body)
		},
	}
	cmd.Flags().StringVar(&addr, "admin", "", "admin listener address")
	cmd.Flags().StringVarP(&path, "config", "c", "", "read the admin address from this config")
	cmd.Flags().BoolVar(&raw, "json", false, "print the raw JSON")
	return cmd
}

func printStatus(w io.Writer, body []byte) error {
	var s struct {
		Node      string            `json:"node"`
		Version   string            `json:"version"`
		Ready     bool              `json:"ready"`
		StartedAt string            `json:"started_at"`
		Listeners map[string]string `json:"listeners"`
		Config    struct {
			Path, Digest string
			LoadedAt     string `json:"loaded_at"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	fmt.Fprintf(w, "node       %s (portcullis %s)\n", s.Node, s.Version)
	fmt.Fprintf(w, "ready      %v (since %s)\n", s.Ready, s.StartedAt)
	fmt.Fprintf(w, "config     %s\n           digest %.12s, loaded %s\n", s.Config.Path, s.Config.Digest, s.Config.LoadedAt)
	for name, a := range s.Listeners {
		fmt.Fprintf(w, "listener   %s on %s\n", name, a)
	}
	return nil
}
