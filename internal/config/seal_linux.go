package config

import (
	"fmt"
	"syscall"
)

// nonDumpable sets PR_SET_DUMPABLE to 0: /proc/PID/{environ,mem,…} become
// root's, and the process can be neither ptraced nor core-dumped by its
// own user.
func nonDumpable() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", errno)
	}
	return nil
}
