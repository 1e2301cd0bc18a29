package execx_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/redact"
)

const (
	signKey  = "untrusted comment: minisign secret key\nRWRTY0IyAAAAsecretsecretsecretSECRETsecretsecret0123456789abcdef=="
	cacheKey = "cache.example-1:c2VjcmV0LWNhY2hlLWtleS1ieXRlcy0wMTIzNDU2Nzg5YWJjZGVmZ2hpams="
)

// newRunner mirrors app.With: secrets from the configuration are dropped from
// child environments and redacted from logs and errors.
func newRunner(t *testing.T, log *bytes.Buffer) *execx.Exec {
	t.Helper()
	env := map[string]string{
		"SOURCEOS_SIGN_SECRET_KEY": signKey,
		"NIX_CACHE_SECRET_KEY":     cacheKey,
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	base := append(os.Environ(),
		"SOURCEOS_SIGN_SECRET_KEY="+signKey,
		"NIX_CACHE_SECRET_KEY="+cacheKey,
		"NIX_CACHE_SECRET_KEY_FILE=/run/secrets/cache",
		"HARMLESS=kept")
	return &execx.Exec{BaseEnv: base, SecretNames: config.SecretNames(), Redactor: cfg.Redactor(), Log: log}
}

func TestChildDoesNotSeeSecrets(t *testing.T) {
	var log bytes.Buffer
	r := newRunner(t, &log)
	res, err := r.Run(context.Background(), execx.Cmd{Name: "env"})
	if err != nil {
		t.Fatal(err)
	}
	env := string(res.Stdout)
	for _, name := range []string{"SOURCEOS_SIGN_SECRET_KEY=", "NIX_CACHE_SECRET_KEY=", "NIX_CACHE_SECRET_KEY_FILE="} {
		if strings.Contains(env, name) {
			t.Errorf("child environment contains %s", name)
		}
	}
	if strings.Contains(env, "secretsecret") || strings.Contains(env, "c2VjcmV0LWNhY2hl") {
		t.Error("child environment contains secret material")
	}
	if !strings.Contains(env, "HARMLESS=kept") {
		t.Error("child environment lost an ordinary variable")
	}
}

func TestChildGetsSecretOnlyWhenAsked(t *testing.T) {
	r := newRunner(t, &bytes.Buffer{})
	res, err := r.Run(context.Background(), execx.Cmd{Name: "env", PassSecrets: []string{"NIX_CACHE_SECRET_KEY"}})
	if err != nil {
		t.Fatal(err)
	}
	env := string(res.Stdout)
	if !strings.Contains(env, "NIX_CACHE_SECRET_KEY="+cacheKey) {
		t.Error("explicitly passed secret missing")
	}
	if strings.Contains(env, "SOURCEOS_SIGN_SECRET_KEY=") {
		t.Error("a secret that was not asked for was passed")
	}
}

func TestSecretsRedactedInLogsAndErrors(t *testing.T) {
	var log bytes.Buffer
	r := newRunner(t, &log)
	signLine := strings.Split(signKey, "\n")[1]
	_, err := r.Run(context.Background(), execx.Cmd{
		Name: "sh",
		Args: []string{"-c", `echo "key is $0 and $1" >&2; exit 3`, cacheKey, signLine},
	})
	var xe *execx.Error
	if !errors.As(err, &xe) {
		t.Fatalf("want *execx.Error, got %v", err)
	}
	if xe.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", xe.ExitCode)
	}
	for name, text := range map[string]string{"log": log.String(), "error": err.Error()} {
		if strings.Contains(text, "c2VjcmV0LWNhY2hl") || strings.Contains(text, "secretsecret") {
			t.Errorf("%s leaks a secret: %q", name, text)
		}
		if !strings.Contains(text, redact.Mask) {
			t.Errorf("%s has no redaction mask: %q", name, text)
		}
	}
	if !strings.Contains(err.Error(), "key is") {
		t.Errorf("error lacks the stderr tail: %q", err)
	}
}

func TestStreamingAndStderrTail(t *testing.T) {
	r := newRunner(t, &bytes.Buffer{})
	var out, errOut bytes.Buffer
	_, err := r.Run(context.Background(), execx.Cmd{
		Name: "sh", Args: []string{"-c", `i=0; while [ $i -lt 2000 ]; do echo "line $i" >&2; i=$((i+1)); done; echo out; exit 1`},
		Stdout: &out, Stderr: &errOut,
	})
	if out.String() != "out\n" {
		t.Errorf("streamed stdout = %q", out.String())
	}
	if !strings.Contains(errOut.String(), "line 0\n") {
		t.Error("streamed stderr lacks its start")
	}
	var xe *execx.Error
	if !errors.As(err, &xe) {
		t.Fatal(err)
	}
	if len(xe.Stderr) > execx.TailBytes || !strings.HasSuffix(xe.Stderr, "line 1999\n") {
		t.Errorf("stderr tail wrong: %d bytes, ends %q", len(xe.Stderr), xe.Stderr[len(xe.Stderr)-20:])
	}
}

func TestContextCancelStopsChildren(t *testing.T) {
	r := newRunner(t, &bytes.Buffer{})
	r.WaitDelay = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The shell's child sleep would outlive a plain kill of the shell.
	_, err := r.Run(ctx, execx.Cmd{Name: "sh", Args: []string{"-c", "sleep 30; echo done"}})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestMissingCommand(t *testing.T) {
	r := newRunner(t, &bytes.Buffer{})
	_, err := r.Run(context.Background(), execx.Cmd{Name: "definitely-not-a-command-xyz"})
	var xe *execx.Error
	if !errors.As(err, &xe) || xe.ExitCode != -1 {
		t.Fatalf("want not-started error, got %v", err)
	}
}

func TestCmdString(t *testing.T) {
	cases := []struct {
		cmd  execx.Cmd
		want string
	}{
		{execx.Cmd{Name: "nix", Args: []string{"build", "--json"}}, "nix build --json"},
		{execx.Cmd{Name: "sh", Args: []string{"-c", "echo 'x' y"}}, `sh -c 'echo '\''x'\'' y'`},
		{execx.Cmd{Name: "echo", Args: []string{""}}, "echo ''"},
		{execx.Cmd{Name: "nix", Args: []string{".#packages.x86_64-linux.a"}}, "nix '.#packages.x86_64-linux.a'"},
	}
	for _, c := range cases {
		if got := c.cmd.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestFakeRecordsAndAnswers(t *testing.T) {
	f := &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) {
		if c.Args[0] == "fail" {
			return execx.Result{Stderr: []byte("boom")}, execx.Failf("exit status 1")
		}
		return execx.Result{Stdout: []byte("ok")}, nil
	}}
	res, err := f.Run(context.Background(), execx.Cmd{Name: "nix", Args: []string{"ok"}})
	if err != nil || string(res.Stdout) != "ok" {
		t.Fatalf("got %q, %v", res.Stdout, err)
	}
	if _, err := f.Run(context.Background(), execx.Cmd{Name: "nix", Args: []string{"fail"}}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want error with stderr, got %v", err)
	}
	if got := strings.Join(f.Commands(), "|"); got != "nix ok|nix fail" {
		t.Fatalf("recorded %q", got)
	}
}

func TestPrefixWriterCutsEndlessLines(t *testing.T) {
	var out bytes.Buffer
	w := execx.NewPrefixWriter(&out, "│ ", 2)
	if _, err := w.Write(bytes.Repeat([]byte("x"), 3*execx.MaxLine+10)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("\nend\n")); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 5 || lines[4] != "│ end" || len(lines[0]) != len("│ ")+execx.MaxLine {
		t.Errorf("got %d lines (first %d bytes, last %q)", len(lines), len(lines[0]), lines[len(lines)-1])
	}
	if tail := w.Tail(); len(tail) != 2 || tail[1] != "end" {
		t.Errorf("tail = %d lines", len(tail))
	}
}
