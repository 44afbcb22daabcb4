// Command refdoc writes docs/configuration.md from internal/config/types*.go.
package main

import (
	"log"
	"os"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: refdoc CONFIG_DIR OUT.md")
	}
	md, err := config.ReferenceFromDir(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(os.Args[2], []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
}
