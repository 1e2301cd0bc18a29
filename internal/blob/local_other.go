//go:build !linux

package blob

import (
	"errors"
	"io/fs"
)

// deferrable: without syncfs, every write is made durable on its own.
const deferrable = false

func renameNoReplace(tmp, dst string) error { return linkNoReplace(tmp, dst) }

func syncFS(string) error { return errors.New("blob: syncfs is not available") }

func umaskHides() bool { return true }

// fileIdentity is empty where the change time is not portable: the
// generation then rests on the modification time and size.
func fileIdentity(fs.FileInfo) []int64 { return nil }
