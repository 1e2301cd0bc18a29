package config_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
)

// sealChildEnv turns the test binary into a child that loads its
// configuration, seals itself when asked, and waits on stdin.
const sealChildEnv = "SOURCEOS_TEST_SEAL_CHILD"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(sealChildEnv); ok {
		os.Exit(sealChild(mode))
	}
	if report, ok := os.LookupEnv(walkEnv); ok {
		os.Exit(walkAncestors(report))
	}
	os.Exit(m.Run())
}

func sealChild(mode string) int {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if mode == "seal" {
		if err := config.Seal(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	// What a child started now inherits.
	out, _ := exec.Command("/bin/sh", "-c", "env").Output()
	inherited := bytes.Contains(out, []byte("SOURCEOS_SIGN_SECRET_KEY"))
	fmt.Printf("ready key-loaded=%v getenv=%q child-inherits=%v\n",
		cfg.SignSecretKey.IsSet(), os.Getenv("SOURCEOS_SIGN_SECRET_KEY"), inherited)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// A process of the same user (the situation of an unsandboxed builder
// running as the operator) reads /proc/PID/environ of an unsealed process
// and finds the key; after Seal it cannot, the key is gone from the
// process's own environment and children inherit nothing.
func TestSealKeepsSecretsFromSameUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the child and the reader as another user")
	}
	const marker = "RWQmarker-secret-key-bytes"
	bin := copyTestBinary(t)
	for _, tc := range []struct {
		mode        string
		wantReadErr bool
		wantReady   string
	}{
		{"none", false, `ready key-loaded=true getenv="` + marker + `" child-inherits=true`},
		{"seal", true, `ready key-loaded=true getenv="" child-inherits=false`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			child := exec.Command(bin)
			child.Env = []string{sealChildEnv + "=" + tc.mode, "SOURCEOS_SIGN_SECRET_KEY=" + marker, "PATH=/usr/bin:/bin"}
			child.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			stdin, err := child.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); _ = child.Wait() }()
			line := readLine(t, stdout, 20*time.Second)
			if line != tc.wantReady {
				t.Fatalf("child said %q, want %q", line, tc.wantReady)
			}
			reader := exec.Command("/bin/cat", fmt.Sprintf("/proc/%d/environ", child.Process.Pid))
			reader.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := reader.CombinedOutput()
			leaked := bytes.Contains(out, []byte(marker))
			if tc.wantReadErr && (err == nil || leaked) {
				t.Errorf("same-user reader got the sealed process's environment (err %v, leaked %v)", err, leaked)
			}
			if !tc.wantReadErr && !leaked {
				t.Errorf("control: same-user reader should see the unsealed environment: %v %s", err, out)
			}
		})
	}
}

func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir's are 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "config.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func readLine(t *testing.T, r io.Reader, timeout time.Duration) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		ch <- strings.TrimSpace(s)
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(timeout):
		t.Fatal("child did not answer in time")
		return ""
	}
}
