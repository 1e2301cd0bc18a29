package image_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/testrig"
)

// SIGTERM is how CI cancels a job and how a VM shuts down. The compiled
// mage binary (what the lanes run) must stop nix and its builders and clean
// up the custom build's directory, as it does on SIGINT, instead of dying
// and leaving them running.
func TestSIGTERMStopsNixAndCleansUp(t *testing.T) {
	testrig.Nix(t)
	root := testrig.RepoRoot(t)
	bin := testrig.CompileMage(t)
	marker := fmt.Sprintf("sourceos-sigterm-%d", time.Now().UnixNano())
	snippet := `{ ... }: { slow = derivation { name = "` + marker + `"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/bin"; ` +
		`args = [ "-c" "echo ` + marker + ` started; sleep 600; echo > $out" ]; }; }`
	specPath := writeSpec(t, map[string]any{"edition": "edge", "arch": "x86_64", "hostname": "h", "moduleSnippet": snippet})
	tmp := t.TempDir()
	cmd := exec.Command(bin, "build:custom", specPath)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SOURCEOS_FLAKE="+testrig.FixtureFlake(t), "OUT="+t.TempDir(), "TMPDIR="+tmp,
		"SOURCEOS_ALLOW_MODULE_SNIPPET=1", "GCS_PREFIX=", "SOURCEOS_SIGN_SECRET_KEY=", "NIX_CACHE_SECRET_KEY=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // only to clean up after a failure
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); killMarked(marker) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), marker+" started") {
		if time.Now().After(deadline) {
			t.Fatalf("the slow derivation did not start:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if dirs, _ := filepath.Glob(filepath.Join(tmp, "sourceos-custom-*")); len(dirs) != 1 {
		t.Fatalf("custom build directory: %v", dirs)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("mage exited 0 after SIGTERM")
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("mage still running 15 s after SIGTERM:\n%s", out.String())
	}
	// Nothing of the build outlives mage: no process mentions the
	// derivation, and the build directory is gone.
	time.Sleep(500 * time.Millisecond)
	if left := marked(marker); len(left) > 0 {
		t.Errorf("still running after mage exited: %v\n%s", left, out.String())
	}
	if dirs, _ := filepath.Glob(filepath.Join(tmp, "sourceos-custom-*")); len(dirs) != 0 {
		t.Errorf("custom build directory left behind: %v", dirs)
	}
}

// marked lists the processes whose command line mentions marker.
func marked(marker string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(marker)) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func killMarked(marker string) {
	for _, p := range marked(marker) {
		var pid int
		if _, err := fmt.Sscanf(p, "%d:", &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
