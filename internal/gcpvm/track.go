package gcpvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/redact"
)

// BuildFunc runs the custom build of the spec in specPath with cfg and
// returns the URL of the unsigned image (a GCS URL when cfg.GCSPrefix is
// set). The mage target wires `build:custom` in. Signing is not its job:
// the status says built, and the trusted step `mage gcp:attest` takes it to
// complete.
type BuildFunc func(ctx context.Context, cfg *config.Config, specPath string) (artifactURL string, err error)

// StoreOpener opens the blob store at a gs://bucket/prefix URL.
type StoreOpener func(ctx context.Context, prefix string) (blob.Store, error)

// ErrNoSpec means the build was started without a spec.
var ErrNoSpec = errors.New("no custom build spec")

// idRe is what a user id or build id may look like: one safe path segment.
var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// job is one status-tracked custom build, the part both lanes share.
type job struct {
	cfg     *config.Config
	spec    []byte
	build   BuildFunc
	status  *statusWriter
	log     *slog.Logger
	red     *redact.Redactor
	timeout time.Duration // 0: none
	tempDir string
}

// run writes building, runs the build, and writes built or error. The
// returned error is the build's (or the status write's).
func (j *job) run(ctx context.Context) error {
	if _, err := j.status.write(ctx, Building, "", ""); err != nil {
		return err
	}
	j.log.Info("status", "state", Building, "at", j.status.where)
	url, err := j.runBuild(ctx)
	if err != nil {
		j.log.Error("build failed", "error", j.red.String(err.Error()))
		if _, werr := j.status.write(ctx, Failed, "", reason(err, j.red)); werr != nil {
			return errors.Join(err, werr)
		}
		j.log.Info("status", "state", Failed, "at", j.status.where)
		return err
	}
	j.log.Info("build finished: unsigned until gcp:attest runs on a trusted machine", "artifact", url)
	if _, err := j.status.write(ctx, Built, url, ""); err != nil {
		return err
	}
	j.log.Info("status", "state", Built, "at", j.status.where)
	return nil
}

// runBuild writes the spec to a private file and calls the build, within
// the deadline.
func (j *job) runBuild(ctx context.Context) (string, error) {
	if len(j.spec) == 0 {
		return "", ErrNoSpec
	}
	dir, err := os.MkdirTemp(j.tempDir, "sourceos-custom-")
	if err != nil {
		return "", fmt.Errorf("spec: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(path, j.spec, 0o600); err != nil {
		return "", fmt.Errorf("spec: %w", err)
	}
	if j.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.timeout)
		defer cancel()
	}
	j.log.Info("build starting", "spec", path, "timeout", j.timeout)
	url, err := callBuild(ctx, j.build, j.cfg, path)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "", fmt.Errorf("build timed out after %s: %w", j.timeout, err)
	}
	if err == nil && url == "" {
		return "", errors.New("build reported success but no artifact URL")
	}
	return url, err
}

// callBuild turns a panic of the build into an error, so the status still
// says error and the VM is still deleted.
func callBuild(ctx context.Context, build BuildFunc, cfg *config.Config, specPath string) (url string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("build panicked: %v", r)
		}
	}()
	return build(ctx, cfg, specPath)
}

// CheckIDs refuses a user or build id that is not one safe path segment:
// they name the user's prefix.
func CheckIDs(cfg *config.Config) error {
	for _, id := range []struct{ name, v string }{{"BUILD_UID", cfg.BuildUID}, {"BUILD_ID", cfg.BuildID}} {
		if id.v != "" && !idRe.MatchString(id.v) {
			return fmt.Errorf("%s %q: want letters, digits, '.', '_' or '-' (at most 128, not starting with a symbol)", id.name, id.v)
		}
	}
	return nil
}

// newStatus opens the status store of cfg.GCSPrefix (nil store when unset).
func newStatus(ctx context.Context, cfg *config.Config, open StoreOpener, lane string, clock func() time.Time) (*statusWriter, error) {
	w := &statusWriter{where: cfg.GCSPrefix, clock: clock, base: Status{
		BuildID: cfg.BuildID, UID: cfg.BuildUID, Version: cfg.Version, Lane: lane, StartedAt: clock().UTC(),
		Run: cfg.GitHubRunID,
	}}
	if cfg.GCSPrefix == "" {
		return w, nil
	}
	s, err := open(ctx, cfg.GCSPrefix)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.GCSPrefix, err)
	}
	w.store = s
	return w, nil
}

// SpecArg turns the argument of `mage gcp:custom` into the spec's JSON:
// the JSON object itself, or a JSON string holding it (what GitHub's toJSON
// gives for a payload field sent as a string). Anything else is refused
// without being read as a path: the argument comes from whoever dispatched
// the build, and a path would let them have a file of the runner read and
// quoted back in status.json (`mage build:custom` takes a spec file).
func SpecArg(arg string) ([]byte, error) {
	s := strings.TrimSpace(arg)
	switch {
	case s == "":
		return nil, ErrNoSpec
	case strings.HasPrefix(s, "{"):
		return []byte(s), nil
	case strings.HasPrefix(s, `"`):
		var inner string
		if err := json.Unmarshal([]byte(s), &inner); err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
		if !strings.HasPrefix(strings.TrimSpace(inner), "{") {
			return nil, errors.New("spec: a JSON string that does not hold a JSON object")
		}
		return []byte(strings.TrimSpace(inner)), nil
	}
	return nil, errors.New("spec: want the spec's JSON object (for a spec file, use mage build:custom)")
}

func newLogger(w *redact.Redactor, out interface{ Write([]byte) (int, error) }) *slog.Logger {
	return slog.New(slog.NewTextHandler(w.Writer(out), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
