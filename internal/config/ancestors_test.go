package config_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// walkEnv turns the test binary into the walker: started by mage as the
// command of `cache:watch`, it reads /proc/PID/environ and cmdline of every
// ancestor and writes what it read to the file walkEnv names.
const walkEnv = "SOURCEOS_TEST_WALK_ANCESTORS"

// ancestor is what the walker read of one process above it.
type ancestor struct {
	PID     int
	Comm    string
	Environ []byte
	EnvErr  string
	Cmdline []byte
	CmdErr  string
}

// walkAncestors follows PPid from the walker's parent up to pid 1 and
// reads each process's environment and command line, as any process of
// the same user can.
func walkAncestors(report string) int {
	var out []ancestor
	for pid, n := os.Getppid(), 0; pid > 0 && n < 64; n++ {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		rest := strings.Fields(s[end+1:])
		a := ancestor{PID: pid, Comm: s[strings.IndexByte(s, '(')+1 : end]}
		if a.Environ, err = os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil {
			a.EnvErr = err.Error()
		}
		if a.Cmdline, err = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil {
			a.CmdErr = err.Error()
		}
		out = append(out, a)
		if pid == 1 || len(rest) < 2 {
			break
		}
		pid, _ = strconv.Atoi(rest[1])
	}
	b, _ := json.Marshal(out)
	if err := os.WriteFile(report, b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "walker:", err)
		return 1
	}
	return 0
}

// goRunRig runs the documented entry points as a user that is not root,
// offline: `go run magefile.go <target>` (the `go` tool, the bootstrap
// that mage.Main runs in, and the compiled targets it starts) and the
// compiled targets on their own.
type goRunRig struct {
	base, repo, bin, walker, keyDir string
	env                             []string
	cred                            *syscall.Credential // nil: this test's own user
	uid, gid                        int
}

func newGoRunRig(t *testing.T) *goRunRig {
	t.Helper()
	goTool := testrig.RequireTool(t, "go")
	testrig.Nix(t) // cache:watch asks Nix for its settings
	root := testrig.RepoRoot(t)
	r := &goRunRig{base: t.TempDir(), uid: os.Getuid(), gid: os.Getgid()}
	if r.uid == 0 { // drop to nobody: the same user for every process of the chain and the walker
		r.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		r.uid, r.gid = 65534, 65534
	}
	for _, d := range []string{filepath.Dir(r.base), r.base} { // t.TempDir's are 0700
		must(t, os.Chmod(d, 0o755))
	}
	dir := func(name string, mode os.FileMode) string {
		p := filepath.Join(r.base, name)
		must(t, os.MkdirAll(p, mode))
		must(t, os.Chmod(p, mode))
		must(t, os.Chown(p, r.uid, r.gid))
		return p
	}
	home, tmp, cacheDir, gocache := dir("home", 0o700), dir("tmp", 0o700), dir("cache", 0o755), dir("gocache", 0o700)
	r.keyDir = dir("keys", 0o700)
	dir("reports", 0o755)

	// The entry point and the targets, as a checkout has them; the user
	// needs nothing else of the repository.
	r.repo = dir("repo", 0o755)
	for _, f := range []string{"go.mod", "go.sum", "magefile.go"} {
		copyFile(t, filepath.Join(root, f), filepath.Join(r.repo, f))
	}
	must(t, os.Mkdir(filepath.Join(r.repo, "magefiles"), 0o755))
	mfs, _ := filepath.Glob(filepath.Join(root, "magefiles", "*.go"))
	for _, f := range mfs {
		copyFile(t, f, filepath.Join(r.repo, "magefiles", filepath.Base(f)))
	}

	// The compiled targets, built once here with this test's warm build
	// cache into mage's cache, where the bootstrap finds them by the hash of
	// the magefiles (MAGEFILE_HASHFAST): the user only compiles the small
	// bootstrap itself.
	magecache := filepath.Join(r.base, "magecache")
	prebuild := exec.Command(goTool, "run", "magefile.go", "config:docs")
	prebuild.Dir = root
	prebuild.Env = append(os.Environ(), "MAGEFILE_CACHE="+magecache, "MAGEFILE_HASHFAST=1")
	unlock := testrig.LockMage(t)
	out, err := prebuild.CombinedOutput()
	unlock()
	if err != nil {
		t.Fatalf("compile the targets: %v\n%s", err, out)
	}
	must(t, os.Chmod(magecache, 0o755))
	bins, _ := filepath.Glob(filepath.Join(magecache, "*"))
	if len(bins) != 1 {
		t.Fatalf("mage cache holds %v", bins)
	}
	r.bin = bins[0]

	gomodcache := goEnv(t, goTool, "GOMODCACHE")
	if r.cred != nil {
		// The user cannot read root's module cache: a copy of the one module
		// the bootstrap needs, taken from that cache, offline.
		mod := filepath.Join(r.base, "gomod")
		dl := exec.Command(goTool, "mod", "download", "github.com/magefile/mage")
		dl.Dir = root
		dl.Env = append(os.Environ(), "GOMODCACHE="+mod, "GOPROXY=file://"+filepath.Join(gomodcache, "cache", "download"), "GOFLAGS=-mod=mod")
		if out, err := dl.CombinedOutput(); err != nil {
			t.Fatalf("module cache for the user: %v\n%s", err, out)
		}
		gomodcache = mod
	} else {
		gocache = goEnv(t, goTool, "GOCACHE")
	}
	r.walker = copyTestBinary(t)
	r.env = []string{
		"PATH=" + filepath.Dir(goTool) + ":/usr/bin:/bin",
		"HOME=" + home, "TMPDIR=" + tmp,
		"GOCACHE=" + gocache, "GOMODCACHE=" + gomodcache, "GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false",
		"MAGEFILE_CACHE=" + magecache, "MAGEFILE_HASHFAST=1",
		"NIX_CONFIG=" + testrig.NixConfig, "NIX_CACHE_DIR=" + cacheDir,
	}
	return r
}

// run starts argv as the rig's user with env added and returns its
// output and what the walker read (nil when it did not run).
func (r *goRunRig) run(t *testing.T, name string, argv []string, env ...string) (string, []ancestor, error) {
	t.Helper()
	report := filepath.Join(r.base, "reports", name+".json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = r.repo
	cmd.Env = append(append(slices.Clone(r.env), walkEnv+"="+report), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	out, runErr := cmd.CombinedOutput()
	b, err := os.ReadFile(report)
	if errors.Is(err, fs.ErrNotExist) {
		return string(out), nil, runErr
	}
	var as []ancestor
	if err != nil || json.Unmarshal(b, &as) != nil {
		t.Fatalf("walker report: %v", err)
	}
	return string(out), as, runErr
}

// A secret given as <NAME>_FILE is in no process's environment or command
// line under `go run magefile.go` or the compiled targets: a process of
// the same user walks every ancestor of the command mage runs and finds
// it nowhere. Given in the environment, it is where the table of
// docs/threat-model.md says: in the `go` tool and the bootstrap
// (`magefile`), or in the shell that started the compiled targets; mage
// says so (a warning), and under CI=true refuses to run. The process that
// loaded the key (the compiled targets) is sealed in every case.
func TestSecretsReachNoAncestorOfTheTargets(t *testing.T) {
	r := newGoRunRig(t)
	key := newCacheKey(t)
	keyFile := filepath.Join(r.keyDir, "cache.key")
	must(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))
	must(t, os.Chown(keyFile, r.uid, r.gid))

	goRun := []string{"go", "run", "magefile.go", "cache:watch", r.walker}
	fromShell := []string{"/bin/sh", "-c", `"$0" cache:watch "$1"; exit $?`, r.bin, r.walker}
	inEnv, inFile := "NIX_CACHE_SECRET_KEY="+key, "NIX_CACHE_SECRET_KEY_FILE="+keyFile
	for _, tc := range []struct {
		name   string
		argv   []string
		secret string
		// holders are the ancestors (comm, nearest first) whose
		// environment holds the key.
		holders []string
		// chain are ancestors the walk must have read, to show it could.
		chain []string
	}{
		{"go run, key file", goRun, inFile, nil, []string{"go", "magefile"}},
		{"go run, key in the environment", goRun, inEnv, []string{"magefile", "go"}, []string{"go", "magefile"}},
		{"compiled, key file", fromShell, inFile, nil, []string{"sh"}},
		{"compiled from a shell, key in the environment", fromShell, inEnv, []string{"sh"}, []string{"sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, as, err := r.run(t, strings.ReplaceAll(tc.name, " ", "-"), tc.argv, tc.secret, "CI=")
			if err != nil || as == nil {
				t.Fatalf("%v (walker ran: %v)\n%s", err, as != nil, out)
			}
			if len(as) < 3 || as[0].EnvErr == "" || as[0].Environ != nil {
				t.Errorf("the compiled targets (pid %d, %s) are not sealed: their environment was readable", as[0].PID, as[0].Comm)
			}
			var holders, read []string
			for _, a := range as {
				if a.EnvErr == "" {
					read = append(read, a.Comm)
				}
				if bytes.Contains(a.Environ, []byte(key)) {
					holders = append(holders, a.Comm)
				}
				if bytes.Contains(a.Cmdline, []byte(key)) {
					t.Errorf("pid %d (%s) holds the key in its command line", a.PID, a.Comm)
				}
			}
			for _, c := range tc.chain {
				if !slices.Contains(read, c) {
					t.Fatalf("the walk read no %s (read %v of %s)", c, read, describe(as))
				}
			}
			if !slices.Equal(holders, tc.holders) {
				t.Errorf("the key is in the environment of %v, want %v (%s)", holders, tc.holders, describe(as))
			}
			warned := strings.Contains(out, "warning: NIX_CACHE_SECRET_KEY is also in the environment of") &&
				strings.Contains(out, "NIX_CACHE_SECRET_KEY_FILE instead")
			if warned != (tc.holders != nil) {
				t.Errorf("warning given: %v, want %v:\n%s", warned, tc.holders != nil, out)
			}
			if strings.Contains(out, key) {
				t.Error("the output holds the key")
			}
		})
	}
	// CI: the lanes pass <NAME>_FILE; a key in the environment of the
	// processes that started mage fails the run before the command runs.
	t.Run("go run, key in the environment, CI=true", func(t *testing.T) {
		out, as, err := r.run(t, "ci", goRun, inEnv, "CI=true")
		if err == nil || as != nil {
			t.Fatalf("it ran (err %v, walker ran %v):\n%s", err, as != nil, out)
		}
		if !strings.Contains(out, "NIX_CACHE_SECRET_KEY is also in the environment of magefile (pid") || !strings.Contains(out, "go (pid") ||
			!strings.Contains(out, "NIX_CACHE_SECRET_KEY_FILE") || strings.Contains(out, key) {
			t.Errorf("output:\n%s", out)
		}
	})
}

// The lanes: a step gives the key to `mage keys:files` only, which writes
// it to a private file in memory and hands the job's later steps its path
// through GITHUB_ENV; the step that builds then holds the path, never the
// value, in its shell and below; `mage keys:removeFiles` removes the file
// and empties the variable for the steps after it.
func TestLaneKeyFilesReachNoAncestor(t *testing.T) {
	r := newGoRunRig(t)
	key := newCacheKey(t)
	ghEnv := filepath.Join(r.keyDir, "github_env")
	must(t, os.WriteFile(ghEnv, nil, 0o600))
	must(t, os.Chown(ghEnv, r.uid, r.gid))
	step := func(name string, env []string, args ...string) (string, []ancestor) {
		t.Helper()
		argv := append([]string{"/bin/sh", "-c", `"$0" "$@"; exit $?`, r.bin}, args...)
		out, as, err := r.run(t, name, argv, append(env, "CI=true", "GITHUB_ENV="+ghEnv)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return out, as
	}
	step("keys-files", []string{"NIX_CACHE_SECRET_KEY=" + key}, "keys:files")
	b, _ := os.ReadFile(ghEnv)
	assign := strings.TrimSpace(string(b))
	path, ok := strings.CutPrefix(assign, "NIX_CACHE_SECRET_KEY_FILE=")
	if !ok || strings.Contains(path, "\n") || !strings.HasPrefix(path, config.KeyFilesParent+"/") {
		t.Fatalf("GITHUB_ENV holds %q", b)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(path)) })
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || int(st.Sys().(*syscall.Stat_t).Uid) != r.uid {
		t.Fatalf("key file %s: %v", path, err)
	}

	out, as := step("build", []string{assign}, "cache:watch", r.walker)
	if as == nil {
		t.Fatalf("the walker did not run:\n%s", out)
	}
	for _, a := range as {
		if bytes.Contains(a.Environ, []byte(key)) || bytes.Contains(a.Cmdline, []byte(key)) {
			t.Errorf("pid %d (%s) holds the key (%s)", a.PID, a.Comm, describe(as))
		}
	}
	if len(as) < 2 || as[1].Comm != "sh" || as[1].EnvErr != "" || !bytes.Contains(as[1].Environ, []byte(assign)) {
		t.Errorf("the walk did not read the step's shell (%s)", describe(as))
	}

	step("remove", []string{assign}, "keys:removeFiles")
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("key directory left behind: %v", err)
	}
	b, _ = os.ReadFile(ghEnv)
	if !strings.HasSuffix(string(b), "\nNIX_CACHE_SECRET_KEY_FILE=\n") {
		t.Errorf("GITHUB_ENV does not empty the variable for later steps:\n%s", b)
	}
}

func describe(as []ancestor) string {
	var parts []string
	for _, a := range as {
		st := "read"
		if a.EnvErr != "" {
			st = "unreadable"
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", a.PID, a.Comm, st))
	}
	return strings.Join(parts, " <- ")
}

// newCacheKey is a Nix binary cache secret key, `name:base64(ed25519)`.
func newCacheKey(t *testing.T) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return "sourceos-test-1:" + base64.StdEncoding.EncodeToString(priv)
}

func goEnv(t *testing.T, goTool, name string) string {
	out, err := exec.Command(goTool, "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
