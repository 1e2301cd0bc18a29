package watch

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"syscall"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// HookSupport says whether Nix will run a post-build hook that this
// process passes on its command line.
type HookSupport struct {
	OK bool
	// Reason explains a refusal, for the one line logged.
	Reason string
	// Existing is the post-build-hook already configured (to chain).
	Existing string
}

// nixConf is what HookSupport needs of `nix show-config --json`.
type nixConf struct {
	Store        string
	TrustedUsers []string
	Hook         string
}

// Identity is who runs Nix, as Nix's daemon would judge it.
type Identity struct {
	UID    int
	User   string
	Groups []string
	// StateWritable: this user can write Nix's state directory, so Nix
	// opens the store itself (no daemon).
	StateWritable bool
	// DaemonSocket: a Nix daemon listens.
	DaemonSocket bool
}

// parseNixConf reads `nix show-config --json` (nixstore.ParseSettings).
func parseNixConf(b []byte) (nixConf, error) {
	settings, err := nixstore.ParseSettings(b)
	if err != nil {
		return nixConf{}, err
	}
	c := nixConf{Store: "auto", TrustedUsers: []string{"root"}}
	for name, v := range map[string]any{"store": &c.Store, "trusted-users": &c.TrustedUsers, "post-build-hook": &c.Hook} {
		if _, err := settings.Get(name, v); err != nil {
			return nixConf{}, err
		}
	}
	return c, nil
}

// decideHook is the decision: Nix opens the store itself (single-user:
// any user's settings apply), or a daemon builds and honours the hook
// only from a trusted user.
func decideHook(c nixConf, id Identity) HookSupport {
	h := HookSupport{Existing: c.Hook}
	daemon := false
	switch {
	case c.Store == "daemon" || strings.HasPrefix(c.Store, "unix://"):
		daemon = true
	case c.Store == "auto" || c.Store == "":
		daemon = !id.StateWritable && id.DaemonSocket
	}
	if !daemon || trusted(c.TrustedUsers, id) {
		h.OK = true
		return h
	}
	h.Reason = fmt.Sprintf("user %s is not a trusted user of the Nix daemon (trusted-users = %s), which ignores a post-build-hook it passes; the closure is pushed when the build ends",
		id.User, strings.Join(c.TrustedUsers, " "))
	return h
}

func trusted(list []string, id Identity) bool {
	for _, t := range list {
		switch {
		case t == "*", t == id.User:
			return true
		case strings.HasPrefix(t, "@") && slices.Contains(id.Groups, t[1:]):
			return true
		}
	}
	return false
}

// CurrentIdentity describes this process's user.
func CurrentIdentity() Identity {
	id := Identity{UID: os.Getuid(), User: fmt.Sprint(os.Getuid())}
	if u, err := user.Current(); err == nil {
		id.User = u.Username
		if gids, err := u.GroupIds(); err == nil {
			for _, gid := range gids {
				if g, err := user.LookupGroupId(gid); err == nil {
					id.Groups = append(id.Groups, g.Name)
				}
			}
		}
	}
	id.StateWritable = syscall.Access("/nix/var/nix", 0x2|0x4) == nil // W_OK|R_OK
	_, err := os.Stat("/nix/var/nix/daemon-socket/socket")
	id.DaemonSocket = err == nil
	return id
}

// DetectHookSupport asks Nix for its settings and decides for id.
func DetectHookSupport(ctx context.Context, run execx.Runner, id Identity) (HookSupport, error) {
	res, err := run.Run(ctx, execx.Cmd{Name: "nix", Args: nixstore.ShowConfigArgs()})
	if err != nil {
		return HookSupport{}, err
	}
	c, err := parseNixConf(res.Stdout)
	if err != nil {
		return HookSupport{}, err
	}
	return decideHook(c, id), nil
}
