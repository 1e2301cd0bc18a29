// Package execx runs external commands. Every command of the pipeline goes
// through a Runner, so that each one honours its context, carries its command
// line and the tail of its stderr in errors, has secrets redacted from what is
// logged, and starts with an environment stripped of secret variables unless
// the call names the ones it needs.
package execx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/socioprophet/sourceos/internal/redact"
)

// Cmd describes one command to run.
type Cmd struct {
	Name string
	Args []string
	Dir  string
	// Env adds or overrides variables ("K=V") on top of the runner's base
	// environment.
	Env []string
	// PassSecrets names secret variables this command needs; all other
	// secret variables are removed from its environment.
	PassSecrets []string
	Stdin       io.Reader
	// Stdout, when set, receives the output as it is produced (streamed)
	// and Result.Stdout stays empty; when nil, stdout is captured.
	Stdout io.Writer
	// Stderr, when set, receives stderr as it is produced (redacted). The
	// tail is captured in any case for the error.
	Stderr io.Writer
}

// String is the command line, shell-quoted where needed.
func (c Cmd) String() string {
	parts := make([]string, 0, len(c.Args)+1)
	for _, a := range append([]string{c.Name}, c.Args...) {
		parts = append(parts, quote(a))
	}
	return strings.Join(parts, " ")
}

func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Result is what a finished command produced.
type Result struct {
	Stdout []byte
	Stderr []byte // the captured tail
}

// Runner runs commands.
type Runner interface {
	Run(ctx context.Context, cmd Cmd) (Result, error)
}

// Error is returned when a command could not start or exited non-zero.
type Error struct {
	Cmd      string // redacted command line
	ExitCode int    // -1 when the command did not run to an exit
	Stderr   string // redacted tail of stderr
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Cmd, e.Err)
	if e.Stderr != "" {
		b.WriteString("\n" + indent(e.Stderr))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

// TailBytes is how much of stderr is kept for errors.
const TailBytes = 4096

// DefaultWaitDelay is how long a cancelled command gets between SIGTERM
// and SIGKILL: shorter than the 5 seconds mage waits for a cancelled target
// before it exits, so nothing the target started outlives it.
const DefaultWaitDelay = 3 * time.Second

// Exec runs commands on this machine.
type Exec struct {
	// BaseEnv is the environment children start from (os.Environ() when nil).
	BaseEnv []string
	// SecretNames are removed from every child environment unless a Cmd
	// passes them explicitly.
	SecretNames []string
	// Redactor masks secrets in logs and errors.
	Redactor *redact.Redactor
	// Log, when set, receives one line per command started.
	Log io.Writer
	// WaitDelay bounds how long a cancelled command may take to exit after
	// SIGTERM before it is killed (default DefaultWaitDelay).
	WaitDelay time.Duration
}

// Run implements Runner.
func (e *Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	line := e.Redactor.String(c.String())
	if e.Log != nil {
		fmt.Fprintf(e.Log, "+ %s\n", line)
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = e.env(c)
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = e.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = DefaultWaitDelay
	}
	var stdout bytes.Buffer
	tail := &tailBuffer{max: TailBytes}
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = tail
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(tail, e.Redactor.Writer(c.Stderr))
	}
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: tail.Bytes()}
	if err != nil {
		return res, e.wrap(line, cmd, tail, err, ctx)
	}
	return res, nil
}

func (e *Exec) wrap(line string, cmd *exec.Cmd, tail *tailBuffer, err error, ctx context.Context) error {
	code := -1
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return &Error{Cmd: line, ExitCode: code, Stderr: e.Redactor.String(string(tail.Bytes())), Err: err}
}

// env builds a child environment: base, minus secrets not passed, plus Cmd.Env.
func (e *Exec) env(c Cmd) []string {
	base := e.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	drop := map[string]bool{}
	for _, n := range e.SecretNames {
		drop[n] = true
	}
	for _, n := range c.PassSecrets {
		delete(drop, n)
	}
	out := make([]string, 0, len(base)+len(c.Env))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] {
			out = append(out, kv)
		}
	}
	return append(out, c.Env...)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.buf }
