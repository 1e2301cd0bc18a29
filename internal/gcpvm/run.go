package gcpvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/redact"
)

// openBlob opens a store with blob's default retry policy.
func openBlob(ctx context.Context, prefix string) (blob.Store, error) { return blob.Open(ctx, prefix) }

// DefaultTimeout is the build deadline on a VM without sourceos-timeout.
const DefaultTimeout = 4 * time.Hour

// Options configures Run. Only Build is required; everything else has the
// production default and is injectable for tests.
type Options struct {
	Build BuildFunc
	// Metadata reads the metadata server; nil: NewServerMetadata(nil),
	// which honours GCE_METADATA_HOST.
	Metadata Metadata
	// Env is the process environment the metadata is laid over (the mage
	// target passes os.LookupEnv); nil: metadata only.
	Env config.Env
	// ReadFile reads <NAME>_FILE secrets; nil: os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// OpenStore opens the status store; nil: blob.Open.
	OpenStore StoreOpener
	// HTTPClient calls the Compute API; nil: a client with a timeout.
	HTTPClient *http.Client
	// ComputeURL is the Compute API base; empty: ComputeURL.
	ComputeURL string
	// Stderr receives the log, with every secret masked; nil: os.Stderr.
	Stderr io.Writer
	// Clock stamps the status; nil: time.Now.
	Clock func() time.Time
	// TempDir holds the spec file; empty: the system's.
	TempDir string
	// RetryDelay is the first pause between delete attempts; 0: 2s.
	RetryDelay time.Duration
}

func (o *Options) defaults() {
	if o.Metadata == nil {
		o.Metadata = NewServerMetadata(nil)
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.OpenStore == nil {
		o.OpenStore = openBlob
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: time.Minute}
	}
	if o.ComputeURL == "" {
		o.ComputeURL = ComputeURL
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = 2 * time.Second
	}
}

// Run is `mage gcp:build`: read the instance metadata, build the spec it
// holds with status.json kept up to date, then delete this VM — also when
// any step before failed (unless sourceos-keep-vm=1). It returns every
// error that happened, joined.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	if o.Build == nil {
		return errors.New("gcp:build: no build function")
	}
	red := redact.New()
	log := newLogger(red, o.Stderr).With("lane", LaneVM)
	log.Info("reading instance metadata")
	in, metaErr := ReadInstance(ctx, o.Metadata)
	if in == nil {
		// Without project, zone and name there is nothing to delete.
		return fmt.Errorf("gcp:build: %w", metaErr)
	}
	red.Add(in.SecretValues()...)
	log.Info("instance", "project", in.Project, "zone", in.Zone, "name", in.Name, "attributes", in.Present())
	buildErr := buildOnVM(ctx, o, in, metaErr, red, log)
	return masked(errors.Join(buildErr, selfDelete(ctx, o, in, log)), red)
}

// maskedError keeps a secret that an error quotes out of the message mage
// prints, and keeps the chain for errors.Is/As.
type maskedError struct {
	err error
	red *redact.Redactor
}

func (e maskedError) Error() string { return e.red.String(e.err.Error()) }
func (e maskedError) Unwrap() error { return e.err }

func masked(err error, red *redact.Redactor) error {
	if err == nil {
		return nil
	}
	return maskedError{err: err, red: red}
}

// buildOnVM is everything between reading the metadata and deleting the VM.
func buildOnVM(ctx context.Context, o Options, in *Instance, metaErr error, red *redact.Redactor, log *slog.Logger) error {
	cfg, timeout, problem := vmConfig(o, in, metaErr, red)
	if cfg.GCSPrefix == "" {
		if problem == nil {
			problem = fmt.Errorf("metadata %s is not set: a VM build has nowhere to report to", AttrGCSPrefix)
		}
		return fmt.Errorf("gcp:build: %s", red.String(problem.Error()))
	}
	status, err := newStatus(ctx, cfg, o.OpenStore, LaneVM, o.Clock)
	if err != nil {
		return errors.Join(problem, fmt.Errorf("gcp:build: %w", err))
	}
	j := &job{cfg: cfg, spec: []byte(in.Attrs[AttrSpec]), build: o.Build, status: status,
		log: log, red: red, timeout: timeout, tempDir: o.TempDir}
	if problem != nil {
		return j.fail(ctx, fmt.Errorf("cannot configure the build: %w", problem))
	}
	if _, ok := in.Attrs[AttrSpec]; !ok {
		return j.fail(ctx, fmt.Errorf("metadata %s is not set: %w", AttrSpec, ErrNoSpec))
	}
	if err := j.run(ctx); err != nil {
		return fmt.Errorf("gcp:build: %w", err)
	}
	return nil
}

// vmConfig loads the configuration from the metadata over the process
// environment. When that fails it still returns a configuration that holds
// the GCS prefix from metadata, so the failure can be reported there.
func vmConfig(o Options, in *Instance, metaErr error, red *redact.Redactor) (*config.Config, time.Duration, error) {
	fallback := &config.Config{GCSPrefix: in.Attrs[AttrGCSPrefix]}
	if metaErr != nil {
		return fallback, 0, fmt.Errorf("instance metadata: %w", metaErr)
	}
	cfg, err := config.Load(in.Env(o.Env), o.ReadFile)
	if err != nil {
		return fallback, 0, err
	}
	red.Add(cfg.SecretValues()...)
	if set := cfg.SecretsSet(); len(set) > 0 {
		return fallback, 0, fmt.Errorf("%w: the VM's environment sets %s", ErrKeysInMetadata, strings.Join(set, ", "))
	}
	if err := CheckIDs(cfg); err != nil {
		return cfg, 0, err
	}
	timeout, err := in.Timeout(DefaultTimeout)
	return cfg, timeout, err
}

// fail records err as the build's outcome without building.
func (j *job) fail(ctx context.Context, err error) error {
	j.log.Error("cannot build", "error", j.red.String(err.Error()))
	_, werr := j.status.write(ctx, Failed, "", reason(err, j.red))
	if werr == nil {
		j.log.Info("status", "state", Failed, "at", j.status.where)
	}
	return errors.Join(fmt.Errorf("gcp:build: %s", j.red.String(err.Error())), werr)
}

// selfDelete deletes the VM, with its own deadline: it must run even when
// ctx was cancelled or the build ran out of time.
func selfDelete(ctx context.Context, o Options, in *Instance, log *slog.Logger) error {
	if in.Bool(AttrKeepVM) {
		log.Warn("not deleting the VM", "because", AttrKeepVM+"=1", "name", in.Name)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	log.Info("deleting this VM", "url", InstanceURL(o.ComputeURL, in.Project, in.Zone, in.Name))
	d := deleter{md: o.Metadata, hc: o.HTTPClient, base: o.ComputeURL, attempts: 4, retryDelay: o.RetryDelay}
	if err := d.delete(ctx, in); err != nil {
		log.Error("VM not deleted", "error", err.Error())
		return err
	}
	log.Info("VM delete requested", "name", in.Name)
	return nil
}

// CustomOptions configures Custom.
type CustomOptions struct {
	Cfg   *config.Config
	Spec  []byte
	Build BuildFunc
	// Lane is recorded in status.json: LaneCI or LaneLocal
	Lane string
	// Timeout bounds the build; 0: none (the CI job has its own).
	Timeout   time.Duration
	OpenStore StoreOpener // nil: blob.Open
	Stderr    io.Writer   // nil: os.Stderr
	Clock     func() time.Time
	TempDir   string
}

// Custom is `mage gcp:custom`: the same status-tracked build as Run, with
// the configuration of the process (the GitHub custom lane). Without a
// GCS_PREFIX it builds and keeps no status.
func Custom(ctx context.Context, o CustomOptions) error {
	if o.Build == nil || o.Cfg == nil {
		return errors.New("gcp:custom: no build function or configuration")
	}
	if o.OpenStore == nil {
		o.OpenStore = openBlob
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	red := o.Cfg.Redactor()
	log := newLogger(red, o.Stderr).With("lane", o.Lane)
	if err := CheckIDs(o.Cfg); err != nil {
		return fmt.Errorf("gcp:custom: %w", err)
	}
	status, err := newStatus(ctx, o.Cfg, o.OpenStore, o.Lane, o.Clock)
	if err != nil {
		return fmt.Errorf("gcp:custom: %w", err)
	}
	if status.store == nil {
		log.Warn("GCS_PREFIX is not set: building without status.json")
	}
	j := &job{cfg: o.Cfg, spec: o.Spec, build: o.Build, status: status, log: log, red: red,
		timeout: o.Timeout, tempDir: o.TempDir}
	if err := j.run(ctx); err != nil {
		return masked(fmt.Errorf("gcp:custom: %w", err), red)
	}
	return nil
}

// AbandonOptions configures Abandon.
type AbandonOptions struct {
	Cfg       *config.Config
	Reason    string
	Lane      string
	OpenStore StoreOpener // nil: blob.Open
	Stderr    io.Writer   // nil: os.Stderr
	Clock     func() time.Time
}

// Abandon is `mage gcp:abandon`: when a lane stops before the build wrote
// its final status (setup failed, job cancelled or timed out), it turns a
// missing or "building" status into error with o.Reason. A final status
// (complete or error) is left as it is.
func Abandon(ctx context.Context, o AbandonOptions) error {
	if o.OpenStore == nil {
		o.OpenStore = openBlob
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	log := newLogger(o.Cfg.Redactor(), o.Stderr).With("lane", o.Lane)
	if o.Cfg.GCSPrefix == "" {
		log.Warn("GCS_PREFIX is not set: no status to mark")
		return nil
	}
	status, err := newStatus(ctx, o.Cfg, o.OpenStore, o.Lane, o.Clock)
	if err != nil {
		return fmt.Errorf("gcp:abandon: %w", err)
	}
	cur, ok, err := ReadStatus(ctx, status.store)
	if err != nil {
		return fmt.Errorf("gcp:abandon: %w", err)
	}
	if ok && cur.State != Building {
		log.Info("status is final, left as it is", "state", cur.State)
		return nil
	}
	if ok {
		status.base.StartedAt = cur.StartedAt
	}
	if _, err := status.write(ctx, Failed, "", o.Reason); err != nil {
		return fmt.Errorf("gcp:abandon: %w", err)
	}
	log.Info("status", "state", Failed, "at", o.Cfg.GCSPrefix, "reason", o.Reason)
	return nil
}
