package blob

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// deferrable: Deferred writes are made durable by Sync (syncfs).
const deferrable = true

// noReplaceUnsupported is set once the file system has refused
// renameat2(RENAME_NOREPLACE); link and unlink are used from then on.
var noReplaceUnsupported atomic.Bool

// renameNoReplace moves tmp to dst unless dst exists (fs.ErrExist). Both
// are in the same directory.
func renameNoReplace(tmp, dst string) error {
	if !noReplaceUnsupported.Load() {
		err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return &os.LinkError{Op: "rename", Old: tmp, New: dst, Err: err}
		}
		noReplaceUnsupported.Store(true)
	}
	return linkNoReplace(tmp, dst)
}

// syncFS makes the file system holding dir durable (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("blob: syncfs %s: %w", dir, err)
	}
	return nil
}

// umaskHides says whether the process umask takes read permission from
// group or others (read once from /proc/self/status; when unknown, yes).
func umaskHides() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return err != nil || m&0o044 != 0
		}
	}
	return true
}

// fileIdentity is a file's device, inode and change time (which a rename
// or link also sets).
func fileIdentity(st fs.FileInfo) []int64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return []int64{int64(s.Dev), int64(s.Ino), s.Ctim.Sec, s.Ctim.Nsec}
	}
	return nil
}
