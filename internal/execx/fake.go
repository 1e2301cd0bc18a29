package execx

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// Fake is a Runner for unit tests: it records every command and answers with
// the first matching response.
type Fake struct {
	mu    sync.Mutex
	Calls []Cmd
	// Respond answers a command; nil answers every command with success and
	// empty output.
	Respond func(Cmd) (Result, error)
}

// Run implements Runner.
func (f *Fake) Run(ctx context.Context, c Cmd) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	f.mu.Lock()
	f.Calls = append(f.Calls, c)
	respond := f.Respond
	f.mu.Unlock()
	if respond == nil {
		return Result{}, nil
	}
	res, err := respond(c)
	if c.Stdout != nil && len(res.Stdout) > 0 {
		if _, werr := c.Stdout.Write(res.Stdout); werr != nil {
			return res, werr
		}
		res.Stdout = nil
	}
	if c.Stderr != nil && len(res.Stderr) > 0 {
		_, _ = io.WriteString(c.Stderr, string(res.Stderr))
	}
	if err != nil {
		return res, &Error{Cmd: c.String(), ExitCode: 1, Stderr: string(res.Stderr), Err: err}
	}
	return res, nil
}

// Commands returns the recorded command lines.
func (f *Fake) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.Calls))
	for i, c := range f.Calls {
		out[i] = c.String()
	}
	return out
}

// Failf is a convenience error for Respond functions.
func Failf(format string, args ...any) error { return fmt.Errorf(format, args...) }
