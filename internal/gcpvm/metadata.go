// Package gcpvm is the GCP build VM lane: `mage gcp:build` reads the
// instance's metadata, turns it into the pipeline's configuration (through
// internal/config, like every other lane), keeps status.json in the user's
// GCS prefix up to date while it runs the custom build, and deletes its own
// VM at the end, also when something failed. The GitHub custom lane
// (`mage gcp:custom`) runs the same status-tracked build from the process
// environment.
package gcpvm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"

	"github.com/socioprophet/sourceos/internal/config"
)

// Attribute is one instance metadata key the build VM understands.
type Attribute struct {
	// Name is the metadata key (instance attribute).
	Name string
	// Var is the config variable the value sets; empty for the keys that
	// only this lane uses.
	Var         string
	Description string
}

// Metadata keys that are not configuration variables.
const (
	AttrSpec       = "sourceos-spec"
	AttrKeepVM     = "sourceos-keep-vm"
	AttrTimeout    = "sourceos-timeout"
	AttrMageURL    = "sourceos-mage-url"
	AttrMageSHA256 = "sourceos-mage-sha256"
	AttrGCSPrefix  = "sourceos-gcs-prefix"
	AttrTarget     = "sourceos-target"
	// AttrOldUID is the shell pipeline's name of sourceos-build-uid, which
	// the self-serve backend sets.
	AttrOldUID = "sourceos-uid"
)

// Attributes lists every metadata key the lane reads, in the order a
// dispatcher sets them. Whether a value is secret is config's decision.
var Attributes = []Attribute{
	{AttrSpec, "", "The custom build spec (JSON), as `mage build:custom` takes it. Required."},
	{"sourceos-build-uid", "BUILD_UID", "The user the build belongs to."},
	{AttrOldUID, "BUILD_UID", "The same, under the shell pipeline's name; when both are set they must agree."},
	{"sourceos-build-id", "BUILD_ID", "The build's identifier."},
	{AttrGCSPrefix, "GCS_PREFIX", "gs://bucket/prefix of the user's build, by default gs://<artifacts>/user-builds/<uid>/<build id>: status.json, the image and its sidecars go there."},
	{AttrTarget, "TARGET", "What the custom build makes: iso (default) or netboot (kernel, initrd, iPXE script and netboot-manifest.json)."},
	{"sourceos-version", "VERSION", "Version stamped into the image and its provenance."},
	{"sourceos-flake", "SOURCEOS_FLAKE", "Flake reference of the SourceOS tree to build from, e.g. github:OWNER/REPO/REV (the VM has no checkout)."},
	{"sourceos-source-rev", "SOURCE_REV", "Commit being built (provenance)."},
	{"sourceos-source-repo", "SOURCE_REPO", "Repository being built (provenance)."},
	{"sourceos-channel", "SOURCEOS_CHANNEL", "Release channel recorded in the OSImage document."},
	{"sourceos-allow-module-snippet", "SOURCEOS_ALLOW_MODULE_SNIPPET", "1 allows the spec's moduleSnippet."},
	{"sourceos-cache-url", "NIX_CACHE_URL", "Public URL of the cache (the startup script adds it as a substituter)."},
	{"sourceos-cache-pubkey", "NIX_CACHE_PUBKEY", "Public key of the cache, trusted for substitution."},
	{AttrTimeout, "", "Longest the build may take (Go duration, default 4h); then the status says error and the VM is deleted."},
	{AttrKeepVM, "", "1 keeps the VM after the build (debugging); default: the VM deletes itself."},
	{AttrMageURL, "", "https URL of the compiled mage binary (read by scripts/gcp-startup.sh with the VM's token)."},
	{AttrMageSHA256, "", "SHA-256 of that binary; the startup script refuses a binary that does not match."},
}

// RefusedAttributes are keys a build VM must never carry. The VM builds
// user-supplied Nix code, and every process on it can read the metadata
// server over HTTP, a fixed-output derivation inside Nix's sandbox included:
// gcp:build refuses to build while any of them is set. Signing happens on a
// trusted machine (`mage gcp:attest`); the VM pushes nothing to the cache.
// sourceos-nix-cache-secret-key is the shell pipeline's name of the cache
// key, which its self-serve backend may still set.
var RefusedAttributes = []string{"sourceos-sign-secret-key", "sourceos-sign-password", "sourceos-custom-attest-secret-key", "sourceos-custom-attest-password", "sourceos-cache-secret-key", "sourceos-nix-cache-secret-key"}

// ErrKeysInMetadata means the instance metadata holds a key.
var ErrKeysInMetadata = errors.New("instance metadata holds signing keys; a build VM runs user code and must hold none")

// Secret reports whether config marks the attribute's variable secret.
func (a Attribute) Secret() bool {
	v, ok := config.Lookup(a.Var)
	return ok && v.Secret
}

// Metadata reads the metadata server. Get returns ok=false for a key that
// is not defined.
type Metadata interface {
	Get(ctx context.Context, suffix string) (value string, ok bool, err error)
}

// ServerMetadata reads the real metadata server through
// cloud.google.com/go/compute/metadata, which honours GCE_METADATA_HOST.
type ServerMetadata struct{ c *metadata.Client }

// NewServerMetadata returns a reader over hc (nil: a client with a timeout).
func NewServerMetadata(hc *http.Client) *ServerMetadata {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &ServerMetadata{c: metadata.NewClient(hc)}
}

// Get implements Metadata.
func (m *ServerMetadata) Get(ctx context.Context, suffix string) (string, bool, error) {
	v, err := m.c.GetWithContext(ctx, suffix)
	var nd metadata.NotDefinedError
	switch {
	case errors.As(err, &nd):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("metadata %s: %w", suffix, err)
	}
	return v, true, nil
}

// Instance is what the VM knows about itself.
type Instance struct {
	Project, Zone, Name string
	// Attrs holds the values of the Attributes that are set.
	Attrs map[string]string
}

// ReadInstance reads the VM's identity and every known attribute. Once the
// identity is known it returns the instance even when some attributes could
// not be read (with the error), so the caller can still report and delete.
func ReadInstance(ctx context.Context, md Metadata) (*Instance, error) {
	in := &Instance{Attrs: map[string]string{}}
	for _, f := range []struct {
		suffix string
		into   *string
	}{{"project/project-id", &in.Project}, {"instance/zone", &in.Zone}, {"instance/name", &in.Name}} {
		v, ok, err := md.Get(ctx, f.suffix)
		if err != nil {
			return nil, err
		}
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("metadata %s is not set: not on a GCE VM?", f.suffix)
		}
		*f.into = strings.TrimSpace(v)
	}
	// instance/zone is projects/<number>/zones/<zone>.
	in.Zone = in.Zone[strings.LastIndex(in.Zone, "/")+1:]
	var errs []error
	for _, a := range Attributes {
		v, ok, err := md.Get(ctx, "instance/attributes/"+a.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			in.Attrs[a.Name] = v
		}
	}
	if err := in.agree(); err != nil {
		errs = append(errs, err)
	}
	if refused := refusedPresent(ctx, md); len(refused) > 0 {
		errs = append(errs, fmt.Errorf("%w: remove %s from the VM's metadata (and sign with mage gcp:attest on a trusted machine)", ErrKeysInMetadata, strings.Join(refused, ", ")))
	}
	return in, errors.Join(errs...)
}

// agree refuses two attributes that set one variable (sourceos-uid and
// sourceos-build-uid) to different values: which user a build belongs to
// must not depend on which name wins.
func (in *Instance) agree() error {
	first := map[string]string{} // variable -> the first attribute that sets it
	var errs []error
	for _, a := range Attributes {
		v, ok := in.Attrs[a.Name]
		if !ok || a.Var == "" {
			continue
		}
		prev, seen := first[a.Var]
		if !seen {
			first[a.Var] = a.Name
			continue
		}
		switch {
		case in.Attrs[prev] == v:
		case a.Secret():
			errs = append(errs, fmt.Errorf("metadata %s and %s both set %s and differ: set one of them", prev, a.Name, a.Var))
		default:
			errs = append(errs, fmt.Errorf("metadata %s (%q) and %s (%q) both set %s and differ: set one of them", prev, in.Attrs[prev], a.Name, v, a.Var))
		}
	}
	return errors.Join(errs...)
}

// refusedPresent names the refused attributes that are set (names only:
// their values are never read into this process). A failing lookup counts
// as present: the VM must not build unless it knows there is no key.
func refusedPresent(ctx context.Context, md Metadata) []string {
	var out []string
	for _, name := range RefusedAttributes {
		if _, ok, err := md.Get(ctx, "instance/attributes/"+name); ok || err != nil {
			out = append(out, name)
		}
	}
	return out
}

// Present lists the names of the attributes that are set, sorted (safe to
// log: names only).
func (in *Instance) Present() []string {
	out := make([]string, 0, len(in.Attrs))
	for k := range in.Attrs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SecretValues returns the values of the secret attributes that are set.
func (in *Instance) SecretValues() []string {
	var out []string
	for _, a := range Attributes {
		if v := in.Attrs[a.Name]; v != "" && a.Secret() {
			out = append(out, v)
		}
	}
	return out
}

// Env overlays the attributes that are configuration variables on base:
// a variable set in metadata wins over the process environment.
func (in *Instance) Env(base config.Env) config.Env {
	over := map[string]string{}
	for _, a := range Attributes {
		if v, ok := in.Attrs[a.Name]; ok && a.Var != "" {
			over[a.Var] = v
		}
	}
	return func(name string) (string, bool) {
		if v, ok := over[name]; ok {
			return v, true
		}
		if base == nil {
			return "", false
		}
		return base(name)
	}
}

// Bool reads a 0/1 attribute.
func (in *Instance) Bool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(in.Attrs[name])) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Timeout is the build's deadline from sourceos-timeout, or def.
func (in *Instance) Timeout(def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(in.Attrs[AttrTimeout])
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("metadata %s: want a positive Go duration such as 3h, got %q", AttrTimeout, v)
	}
	return d, nil
}
