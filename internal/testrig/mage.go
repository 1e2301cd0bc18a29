package testrig

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// LockMage holds, across test processes, the lock that every test running
// mage in the repository takes: mage writes its generated main file into
// magefiles/ while it compiles, so two compiles of the same tree at once
// (go test runs packages in parallel) break each other. It returns the
// unlock function.
func LockMage(t testing.TB) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "sourceos-mage-compile.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// CompileMage compiles the repository's targets into one binary (`go run
// magefile.go -compile`, what the lanes run) and returns its path.
func CompileMage(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mage")
	unlock := LockMage(t)
	defer unlock()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "run", "magefile.go", "-compile", bin)
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile the targets: %v\n%s", err, out)
	}
	return bin
}
