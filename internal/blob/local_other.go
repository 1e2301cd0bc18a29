//go:build !linux

package blob

import "errors"

// deferrable: without syncfs, every write is made durable on its own.
const deferrable = false

func renameNoReplace(tmp, dst string) error { return linkNoReplace(tmp, dst) }

func syncFS(string) error { return errors.New("blob: syncfs is not available") }

func umaskHides() bool { return true }
