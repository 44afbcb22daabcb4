// Command schemagen writes docs/portcullis.schema.json, the JSON Schema of
// the config file, from internal/config/types*.go.
package main

import (
	"log"
	"os"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: schemagen CONFIG_DIR OUT.json")
	}
	js, err := config.JSONSchemaFromDir(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(os.Args[2], js, 0o644); err != nil {
		log.Fatal(err)
	}
}
