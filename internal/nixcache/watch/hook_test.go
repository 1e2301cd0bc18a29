package watch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const (
	storeA = "/nix/store/0svp6yqk91kgf5g7xr90xy3yjsk0jp0a-a"
	storeB = "/nix/store/1svp6yqk91kgf5g7xr90xy3yjsk0jp0a-b"
	drvA   = "/nix/store/2svp6yqk91kgf5g7xr90xy3yjsk0jp0a-a.drv"
)

// runHook runs the hook script as Nix would: no arguments, the build's
// environment plus DRV_PATH and OUT_PATHS.
func runHook(t *testing.T, script string, env ...string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(p, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hook exited with %v (a failing hook stops Nix):\n%s", err, out)
	}
}

// The hook appends the derivation and its outputs to the spool, one per
// line; it succeeds even when it cannot write; it runs a chained hook.
func TestHookScript(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "it's spooled") // quoting
	if err := os.WriteFile(spool, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	runHook(t, hookScript(spool, ""), "DRV_PATH="+drvA, "OUT_PATHS="+storeA+" "+storeB)
	runHook(t, hookScript(spool, ""), "DRV_PATH="+drvA, "OUT_PATHS=") // Nix 2.8 leaves it empty
	b, _ := os.ReadFile(spool)
	if got, want := string(b), drvA+"\n"+storeA+"\n"+storeB+"\n"+drvA+"\n"; got != want {
		t.Fatalf("spool %q, want %q", got, want)
	}
	runHook(t, hookScript(filepath.Join(dir, "missing", "spool"), ""), "DRV_PATH="+drvA, "OUT_PATHS="+storeA)
	marker := filepath.Join(dir, "chained")
	chain := filepath.Join(dir, "theirs")
	if err := os.WriteFile(chain, []byte("#!/bin/sh\necho \"$OUT_PATHS\" > '"+marker+"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	runHook(t, hookScript(spool, chain), "DRV_PATH="+drvA, "OUT_PATHS="+storeA)
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != storeA {
		t.Fatalf("the chained hook did not run with OUT_PATHS: %q %v", b, err)
	}
	if s := hookScript(spool, ""); strings.Contains(s, "KEY") || strings.Contains(s, "$NIX_CACHE") {
		t.Fatalf("the hook mentions a secret:\n%s", s)
	}
}

// Only complete lines are taken; what is not a store path is skipped. A
// line longer than any store path is skipped up to and including its
// newline and counted once, also when it arrives over several reads or
// before its newline is written.
func TestSpoolReader(t *testing.T) {
	long := strings.Repeat("x", maxSpoolLine+1)
	for _, c := range []struct {
		name     string
		appends  []string // appended to the spool before each read
		want     []string
		overlong int64
		left     int // bytes not consumed at the end
	}{
		{"lines", []string{storeA + "\nnot a path\n\n" + drvA + "\n" + storeB[:20]}, []string{storeA, drvA}, 0, 20},
		{"a line completed later", []string{storeA[:10], storeA[10:] + "\n"}, []string{storeA}, 0, 0},
		{"a line at the limit", []string{strings.Repeat("y", maxSpoolLine) + "\n" + storeB + "\n"}, []string{storeB}, 0, 0},
		{"an over-long line", []string{storeA + "\n" + long + "\n" + storeB + "\n"}, []string{storeA, storeB}, 1, 0},
		{"an over-long line in pieces", []string{storeA + "\n" + long, long, "x\n" + storeB + "\n"}, []string{storeA, storeB}, 1, 0},
		{"an over-long line not ended yet", []string{long, long}, nil, 1, 0},
		{"two over-long lines", []string{long + "\n" + long + "\n" + storeB[:5]}, nil, 2, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r spoolReader
			var spool []byte
			var paths []string
			for _, a := range c.appends {
				spool = append(spool, a...)
				paths = append(paths, r.parse(spool[r.offset:])...)
			}
			if strings.Join(paths, " ") != strings.Join(c.want, " ") || r.overlong.Load() != c.overlong || len(spool)-int(r.offset) != c.left {
				t.Fatalf("paths %v, over-long %d, left %d; want %v, %d, %d", paths, r.overlong.Load(), len(spool)-int(r.offset), c.want, c.overlong, c.left)
			}
		})
	}
}

func TestDecideHook(t *testing.T) {
	user := Identity{UID: 1000, User: "runner", Groups: []string{"runner", "docker"}, DaemonSocket: true}
	root := Identity{UID: 0, User: "root", Groups: []string{"root"}, StateWritable: true, DaemonSocket: true}
	single := Identity{UID: 1000, User: "me", StateWritable: true}
	for _, c := range []struct {
		name string
		conf nixConf
		id   Identity
		ok   bool
	}{
		{"single-user install", nixConf{Store: "auto", TrustedUsers: []string{"root"}}, single, true},
		{"root on a daemon host", nixConf{Store: "auto", TrustedUsers: []string{"root"}}, root, true},
		{"untrusted daemon user", nixConf{Store: "auto", TrustedUsers: []string{"root"}}, user, false},
		{"trusted by name", nixConf{Store: "auto", TrustedUsers: []string{"root", "runner"}}, user, true},
		{"trusted by group", nixConf{Store: "daemon", TrustedUsers: []string{"@docker"}}, user, true},
		{"everyone trusted", nixConf{Store: "unix:///nix/var/nix/daemon-socket/socket", TrustedUsers: []string{"*"}}, user, true},
		{"explicit daemon, root not listed", nixConf{Store: "daemon", TrustedUsers: []string{"alice"}}, root, false},
		{"local store given", nixConf{Store: "local", TrustedUsers: []string{"root"}}, user, true},
	} {
		h := decideHook(c.conf, c.id)
		if h.OK != c.ok || (!h.OK && !strings.Contains(h.Reason, "not a trusted user")) {
			t.Errorf("%s: %+v, want ok=%v", c.name, h, c.ok)
		}
	}
}

func TestParseNixConf(t *testing.T) {
	wrapped := `{"store":{"value":"daemon","defaultValue":"auto"},"trusted-users":{"value":["root","@wheel"]},"post-build-hook":{"value":"/etc/nix/upload.sh"}}`
	bare := `{"store":"daemon","trusted-users":["root","@wheel"],"post-build-hook":"/etc/nix/upload.sh"}`
	for _, in := range []string{wrapped, bare} {
		c, err := parseNixConf([]byte(in))
		if err != nil || c.Store != "daemon" || strings.Join(c.TrustedUsers, " ") != "root @wheel" || c.Hook != "/etc/nix/upload.sh" {
			t.Errorf("parseNixConf(%s) = %+v, %v", in, c, err)
		}
	}
	c, err := parseNixConf([]byte(`{}`))
	if err != nil || c.Store != "auto" || strings.Join(c.TrustedUsers, " ") != "root" {
		t.Errorf("defaults: %+v %v", c, err)
	}
	if _, err := parseNixConf([]byte(`{"trusted-users":{"value":42}}`)); err == nil {
		t.Error("a number for trusted-users parsed")
	}
}

// The wrapped command sees the caller's NIX_CONFIG with the hook added.
func TestWatchedCmdMergesNixConfig(t *testing.T) {
	argv := []string{"/bin/sh", "-c", `printf '%s' "$NIX_CONFIG"`}
	for _, c := range []struct{ env, want string }{
		{"NIX_CONFIG=sandbox = true", "sandbox = true\npost-build-hook = /tmp/h"},
		{"OTHER=1", "post-build-hook = /tmp/h"},
	} {
		cmd := WatchedCmd("/tmp/h", argv)
		res, err := (&execx.Exec{BaseEnv: []string{c.env}}).Run(context.Background(), cmd)
		if err != nil || string(res.Stdout) != c.want {
			t.Errorf("with %s: %q, %v; want %q", c.env, res.Stdout, err, c.want)
		}
	}
}

// The outputs a derivation fixes are read from it, as the store has them.
func TestDrvOutputs(t *testing.T) {
	testrig.Nix(t)
	attr := testrig.Attr(t, "sourceos-desktop-system")
	drv, err := exec.Command("nix", "eval", "--raw", attr+".drvPath").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nix", "eval", "--raw", attr+".outPath").Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := drvOutputs(string(drv))
	if err != nil || len(got) != 1 || got[0] != string(out) {
		t.Fatalf("drvOutputs(%s) = %v, %v; want %s", drv, got, err, out)
	}
	if _, err := drvOutputs("/nix/store/not-there.drv"); err == nil {
		t.Fatal("a missing derivation parsed")
	}
}
