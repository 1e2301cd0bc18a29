//go:build ignore

// The zero-install entry point: `go run magefile.go -l` lists the targets and
// `go run magefile.go <target>` runs one, with no mage installed. The targets
// live in magefiles/. `go run magefile.go -compile ./bin/sourceos-mage` gives
// a single binary (the GCP build VM uses it).
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
