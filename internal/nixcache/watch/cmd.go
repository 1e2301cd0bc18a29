package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache/push"
)

// WatchedCmd is the command that runs argv with hook as Nix's
// post-build-hook, added to whatever NIX_CONFIG the caller has: a shell
// appends the line, so the configuration is merged by the child and not
// read here.
func WatchedCmd(hook string, argv []string) execx.Cmd {
	script := `NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}post-build-hook = ` + hook + `" exec "$@"`
	return execx.Cmd{Name: "/bin/sh", Args: append([]string{"-c", script, "sh"}, argv...)}
}

// Run runs argv (any command that runs Nix builds) with a watcher:
// every path Nix builds is pushed as soon as it is built; when the command
// succeeds, a root names the built paths nothing else built refers to.
// When the command fails, what it built is still pushed, without a root.
func Run(ctx context.Context, o push.Options, argv []string, stdout, stderr io.Writer) (push.Summary, error) {
	if len(argv) == 0 {
		return push.Summary{}, errors.New("cache watch: no command given")
	}
	if o.Runner == nil {
		return push.Summary{}, errors.New("cache watch: no command runner")
	}
	hs, err := DetectHookSupport(ctx, o.Runner, CurrentIdentity())
	if err != nil {
		return push.Summary{}, fmt.Errorf("cache watch: %w", err)
	}
	if !hs.OK {
		return push.Summary{}, fmt.Errorf("cache watch: %s; run the command, then cache:push its outputs", strings.Replace(hs.Reason, "; the closure is pushed when the build ends", "", 1))
	}
	w, err := Start(ctx, o, Options{ChainHook: hs.Existing})
	if err != nil {
		return push.Summary{}, err
	}
	cmd := WatchedCmd(w.Hook(), argv)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if _, runErr := o.Runner.Run(ctx, cmd); runErr != nil {
		sum, err := w.Finish(context.WithoutCancel(ctx))
		return sum, errors.Join(fmt.Errorf("cache watch: %w", runErr), err)
	}
	return w.Close(ctx, nil)
}
