package checks_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/testrig"
)

// offlineBound is how long check:contracts may take on a machine that
// cannot fetch nixpkgs.
const offlineBound = 2 * time.Minute

// check:contracts, as the compiled targets run it, on a fresh clone of the
// repository (the pinned flake.lock, no result links) with an empty Nix
// store and no way to reach a network: it must pass within the bound,
// falling back to the module mode and saying why in one line, after
// trying to fetch nixpkgs. Downloads cannot succeed by luck: every Nix
// download goes through a proxy on a closed loopback port, substituters
// point at that port too, and where the machine allows it the binary runs
// in a network namespace of its own (no interface but a down loopback).
func TestContractsPassOfflineOnAPristineClone(t *testing.T) {
	testrig.Nix(t)
	for _, tool := range []string{"git", "nix-instantiate", "nix-store", "shellcheck"} {
		testrig.RequireTool(t, tool)
	}
	root := testrig.RepoRoot(t)
	clone := pristineClone(t, root)
	bin := testrig.CompileMage(t)

	dead := closedPort(t)
	scratch := t.TempDir()
	argv := append(isolation(t), bin, "check:contracts")
	ctx, cancel := context.WithTimeout(context.Background(), offlineBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = clone
	cmd.Env = append(withoutEnv(os.Environ(), "NIX_CONFIG", "SOURCEOS_", "XDG_CACHE_HOME", "http_proxy", "https_proxy",
		"HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"),
		"NIX_CONFIG="+testrig.NixConfig+"store = "+filepath.Join(scratch, "store")+"\nsubstituters = "+dead+"\n",
		"XDG_CACHE_HOME="+filepath.Join(scratch, "cache"),
		"http_proxy="+dead, "https_proxy="+dead, "HTTPS_PROXY="+dead, "all_proxy="+dead,
		"SOURCEOS_CHECK_HOST_MODE=auto")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("check:contracts took %s (%s)", time.Since(start).Round(time.Millisecond), strings.Join(argv[:len(argv)-2], " "))
	if ctx.Err() != nil {
		t.Fatalf("check:contracts did not finish within %s:\n%s\n%s", offlineBound, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("check:contracts failed offline: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "== hosts: 4 checked, 0 failed (module mode, because nixpkgs is not in the Nix store and could not be fetched: ") {
		t.Errorf("the report does not say the hosts fell back to the module mode, and why:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "flake archive --json --no-update-lock-file") {
		t.Errorf("nixpkgs was not tried before falling back:\n%s", stderr.String())
	}
}

// pristineClone is what a fresh clone of the working tree holds: its
// tracked and new (not ignored) files, committed into a new repository.
func pristineClone(t *testing.T, root string) string {
	t.Helper()
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	names, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, rel := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "-A"},
		{"-c", "user.name=clone", "-c", "user.email=clone@localhost", "commit", "-q", "-m", "clone"},
	} {
		c := exec.Command("git", args...)
		c.Dir = dst
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dst
}

// closedPort is an http:// URL on a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// isolation is the command prefix that runs a program without network:
// a network namespace of its own when the machine allows one (as root,
// or through a user namespace), else nothing (the proxy still holds).
func isolation(t *testing.T) []string {
	t.Helper()
	for _, prefix := range [][]string{{"unshare", "--net"}, {"unshare", "--map-root-user", "--net"}} {
		if exec.Command(prefix[0], append(prefix[1:], "true")...).Run() == nil {
			return prefix
		}
	}
	t.Log("no network namespace available; downloads still go to a closed port")
	return nil
}

func withoutEnv(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, p := range prefixes {
			if name == p || (strings.HasSuffix(p, "_") && strings.HasPrefix(name, p)) {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
