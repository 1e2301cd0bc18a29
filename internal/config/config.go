// Package config is the one place that reads the environment. Every variable
// the pipeline understands is declared once in Vars, with a description, a
// default and whether it is secret; Load turns the environment into a Config
// that is passed down to every other package.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/redact"
)

// Secret holds a value that must never be printed. Its String, GoString and
// MarshalText methods all redact; Reveal is the only way to read it.
type Secret struct{ v string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether a value was given.
func (s Secret) IsSet() bool { return s.v != "" }

func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redact.Mask
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// MarshalText keeps JSON and text encoders from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is the effective configuration of one run.
type Config struct {
	// Build
	Flake              string // SOURCEOS_FLAKE
	Catalog            string // SOURCEOS_CATALOG
	Edition            string // EDITION
	Arch               string // ARCH
	Target             string // TARGET
	Version            string // VERSION
	Out                string // OUT
	SourceRev          string // SOURCE_REV
	SourceRepo         string // SOURCE_REPO
	BuildID            string // BUILD_ID
	BuildUID           string // BUILD_UID
	GCSPrefix          string // GCS_PREFIX
	Channel            string // SOURCEOS_CHANNEL
	Hostname           string // SOURCEOS_HOSTNAME
	AllowModuleSnippet bool   // SOURCEOS_ALLOW_MODULE_SNIPPET

	// Nix binary cache
	CacheBucket       string   // NIX_CACHE_BUCKET
	CachePrefix       string   // NIX_CACHE_PREFIX
	CacheDir          string   // NIX_CACHE_DIR
	CacheSecretKey    Secret   // NIX_CACHE_SECRET_KEY
	CacheURL          string   // NIX_CACHE_URL
	CachePubKey       string   // NIX_CACHE_PUBKEY
	CacheCompression  string   // NIX_CACHE_COMPRESSION
	CacheUpstreams    []string // NIX_CACHE_UPSTREAMS
	CacheStrict       bool     // NIX_CACHE_STRICT
	CacheJobs         int      // NIX_CACHE_JOBS
	CacheWatch        bool     // NIX_CACHE_WATCH
	CacheRoot         string   // NIX_CACHE_ROOT
	CacheRootPin      bool     // NIX_CACHE_ROOT_PIN
	CacheGCKeepLast   int      // NIX_CACHE_GC_KEEP_LAST
	CacheGCKeepDays   int      // NIX_CACHE_GC_KEEP_DAYS
	CacheGCGraceHours int      // NIX_CACHE_GC_GRACE_HOURS
	CacheGCDryRun     bool     // NIX_CACHE_GC_DRY_RUN

	// Signing
	SignSecretKey       Secret   // SOURCEOS_SIGN_SECRET_KEY
	SignPassword        Secret   // SOURCEOS_SIGN_PASSWORD
	SignPubKey          string   // SOURCEOS_SIGN_PUBKEY
	CustomSignSecretKey Secret   // SOURCEOS_CUSTOM_SIGN_SECRET_KEY
	CustomSignPassword  Secret   // SOURCEOS_CUSTOM_SIGN_PASSWORD
	RequireSignature    bool     // SOURCEOS_REQUIRE_SIGNATURE
	VerifyJSON          bool     // SOURCEOS_VERIFY_JSON
	AllowLegacySig      bool     // SOURCEOS_VERIFY_ALLOW_LEGACY
	AllowShellBundle    bool     // SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE
	VerifyAllowCustom   bool     // SOURCEOS_VERIFY_ALLOW_CUSTOM
	VerifyBuildID       string   // SOURCEOS_VERIFY_BUILD_ID
	CustomSignPubKey    string   // SOURCEOS_CUSTOM_SIGN_PUBKEY
	StorePaths          []string // STORE_PATHS
	RebuildCheck        bool     // SOURCEOS_REBUILD_CHECK
	RequireReproducible bool     // SOURCEOS_REQUIRE_REPRODUCIBLE

	// Verify by URL
	VerifyTimeout       time.Duration // SOURCEOS_VERIFY_TIMEOUT
	VerifyHeaderTimeout time.Duration // SOURCEOS_VERIFY_HEADER_TIMEOUT
	VerifyIdleTimeout   time.Duration // SOURCEOS_VERIFY_IDLE_TIMEOUT
	VerifyMinRate       int           // SOURCEOS_VERIFY_MIN_RATE, KiB/s

	// Checks
	CheckJSON     bool   // SOURCEOS_CHECK_JSON
	CheckHostMode string // SOURCEOS_CHECK_HOST_MODE

	// Environment of the run
	CI              bool   // CI
	GitHubEnv       string // GITHUB_ENV
	GitHubOutput    string // GITHUB_OUTPUT
	GitHubRunID     string // GITHUB_RUN_ID
	GCSEmulatorHost string // STORAGE_EMULATOR_HOST

	sources map[string]string // variable name -> "env", "file", "default"
}

// Defaults of the limits of `mage verify <URL>` (docs/signing.md); verify
// takes them for a limit left zero too. A download must average
// DefaultVerifyMinRate KiB/s over every VerifyRateWindow.
const (
	DefaultVerifyTimeout       = 6 * time.Hour
	DefaultVerifyHeaderTimeout = 30 * time.Second
	DefaultVerifyIdleTimeout   = 60 * time.Second
	DefaultVerifyMinRate       = 16
	VerifyRateWindow           = time.Minute
)

// Var declares one environment variable.
type Var struct {
	Name        string
	Group       string
	Default     string
	Description string
	// Secret variables are redacted everywhere, kept out of child
	// environments and may also be given as a file through <Name>_FILE.
	Secret bool
	set    func(c *Config, v string) error
	get    func(c *Config) string
	// check validates a value before it is set (nil: any value).
	check func(v string) error
}

// Vars lists every variable the pipeline reads, in the order they are shown.
var Vars = []Var{
	str("SOURCEOS_FLAKE", "build", ".", "Flake to build: a path, `path:…` or any flake ref. Default: this repository.", func(c *Config) *string { return &c.Flake }),
	str("SOURCEOS_CATALOG", "build", "", "The catalog of what the flake builds; default: `catalog.json` at the flake's root (docs/catalog.md).", func(c *Config) *string { return &c.Catalog }),
	str("EDITION", "build", "", "Edition of the artifact `mage sign` signs when the catalog does not know its file name (with TARGET and ARCH): one of the catalog's.", func(c *Config) *string { return &c.Edition }),
	str("ARCH", "build", "x86_64", "CPU architecture: x86_64 or aarch64.", func(c *Config) *string { return &c.Arch }),
	str("TARGET", "build", "iso", "Kind of artifact `build:<edition>` builds: iso, netboot, qcow2 or gce (as the catalog lists them for the edition); a custom build makes an iso or a netboot set.", func(c *Config) *string { return &c.Target }),
	str("VERSION", "build", "0.0.0-dev", "Version stamped into artifacts and provenance.", func(c *Config) *string { return &c.Version }),
	str("OUT", "build", "out", "Directory that receives artifacts and their sidecars.", func(c *Config) *string { return &c.Out }),
	str("SOURCE_REV", "build", "", "Commit of the source repository being built (provenance).", func(c *Config) *string { return &c.SourceRev }),
	str("SOURCE_REPO", "build", "", "URL of the source repository being built (provenance).", func(c *Config) *string { return &c.SourceRepo }),
	str("BUILD_ID", "build", "", "Identifier of this build (trusted comment, provenance invocation id).", func(c *Config) *string { return &c.BuildID }),
	str("BUILD_UID", "build", "", "Identifier of the user a custom build belongs to.", func(c *Config) *string { return &c.BuildUID }),
	checked(str("GCS_PREFIX", "build", "", "gs://bucket/prefix that artifacts are uploaded to (or a local directory); empty: no upload.", func(c *Config) *string { return &c.GCSPrefix }), checkLocation),
	str("SOURCEOS_CHANNEL", "build", "dev", "Release channel recorded in the OSImage document: stable, candidate or dev.", func(c *Config) *string { return &c.Channel }),
	str("SOURCEOS_HOSTNAME", "build", "", "Host name of the image, recorded in provenance; default: the edition's.", func(c *Config) *string { return &c.Hostname }),
	boolean("SOURCEOS_ALLOW_MODULE_SNIPPET", "build", "Allow a custom build spec's moduleSnippet.", func(c *Config) *bool { return &c.AllowModuleSnippet }),

	checked(str("NIX_CACHE_BUCKET", "cache", "", "GCS bucket of the Nix binary cache.", func(c *Config) *string { return &c.CacheBucket }), checkBucket),
	checked(str("NIX_CACHE_PREFIX", "cache", "nix-cache", "Object prefix of the cache inside the bucket.", func(c *Config) *string { return &c.CachePrefix }), checkObjectPrefix),
	str("NIX_CACHE_DIR", "cache", "", "Local directory cache (same layout) used instead of a bucket.", func(c *Config) *string { return &c.CacheDir }),
	secret("NIX_CACHE_SECRET_KEY", "cache", "Cache signing key, Nix `name:base64` format.", func(c *Config) *Secret { return &c.CacheSecretKey }),
	checked(str("NIX_CACHE_URL", "cache", "", "Public URL of the cache, for substituters.", func(c *Config) *string { return &c.CacheURL }), checkURL),
	checked(str("NIX_CACHE_PUBKEY", "cache", "", "Cache public key, Nix `name:base64` format.", func(c *Config) *string { return &c.CachePubKey }), checkNixPublicKey),
	str("NIX_CACHE_COMPRESSION", "cache", "zstd", "NAR compression: zstd, xz or none.", func(c *Config) *string { return &c.CacheCompression }),
	checked(list("NIX_CACHE_UPSTREAMS", "cache", "https://cache.nixos.org", "Space-separated caches whose paths are not pushed; empty turns the check off.", func(c *Config) *[]string { return &c.CacheUpstreams }), checkURLs),
	boolean("NIX_CACHE_STRICT", "cache", "Make any cache push failure fail the command.", func(c *Config) *bool { return &c.CacheStrict }),
	integer("NIX_CACHE_JOBS", "cache", "256", "Requests a push keeps in flight at most; it starts at 64 and follows the link towards this (docs/nix-cache.md).", func(c *Config) *int { return &c.CacheJobs }),
	defaultOn(boolean("NIX_CACHE_WATCH", "cache", "Push each path of an edition build as soon as Nix has built it (a post-build hook that only queues paths); 0 pushes the closure at the end only.", func(c *Config) *bool { return &c.CacheWatch })),
	checked(str("NIX_CACHE_ROOT", "cache", "", "Name of the GC root a push records (lower case, digits, `.`, `_`, `-`); default: `<edition>-<arch>-<target>-<channel>` for builds, `push` or `watch` for cache targets.", func(c *Config) *string { return &c.CacheRoot }), checkRootName),
	boolean("NIX_CACHE_ROOT_PIN", "cache", "Pin the roots this run records: cache:gc never collects them (release builds).", func(c *Config) *bool { return &c.CacheRootPin }),
	checked(integer("NIX_CACHE_GC_KEEP_LAST", "cache", "3", "cache:gc keeps the closures of the newest this many roots of each name.", func(c *Config) *int { return &c.CacheGCKeepLast }), atMost(1000)),
	checked(integer("NIX_CACHE_GC_KEEP_DAYS", "cache", "45", "cache:gc keeps every root younger than this many days; at least 31 (clients cache narinfo look-ups for 30 days).", func(c *Config) *int { return &c.CacheGCKeepDays }), keepDays),
	checked(integer("NIX_CACHE_GC_GRACE_HOURS", "cache", "24", "cache:gc never deletes an object younger than this many hours (a push under way is never broken).", func(c *Config) *int { return &c.CacheGCGraceHours }), atMost(24*365)),
	boolean("NIX_CACHE_GC_DRY_RUN", "cache", "cache:gc prints what it would delete and deletes nothing.", func(c *Config) *bool { return &c.CacheGCDryRun }),

	secret("SOURCEOS_SIGN_SECRET_KEY", "sign", "minisign secret key (file contents).", func(c *Config) *Secret { return &c.SignSecretKey }),
	secret("SOURCEOS_SIGN_PASSWORD", "sign", "Password of an encrypted minisign secret key.", func(c *Config) *Secret { return &c.SignPassword }),
	secret("SOURCEOS_CUSTOM_SIGN_SECRET_KEY", "sign", "minisign secret key of custom builds (gcp:attest), when they have a key of their own; gcp:attest uses it before SOURCEOS_SIGN_SECRET_KEY.", func(c *Config) *Secret { return &c.CustomSignSecretKey }),
	secret("SOURCEOS_CUSTOM_SIGN_PASSWORD", "sign", "Password of an encrypted SOURCEOS_CUSTOM_SIGN_SECRET_KEY.", func(c *Config) *Secret { return &c.CustomSignPassword }),
	multiline(str("SOURCEOS_SIGN_PUBKEY", "sign", "", "minisign public key: the `RW…` line, a .pub file's contents or a path to a .pub file.", func(c *Config) *string { return &c.SignPubKey })),
	boolean("SOURCEOS_REQUIRE_SIGNATURE", "sign", "Fail instead of producing unsigned artifacts.", func(c *Config) *bool { return &c.RequireSignature }),
	boolean("SOURCEOS_VERIFY_JSON", "sign", "Print the verification report as JSON.", func(c *Config) *bool { return &c.VerifyJSON }),
	boolean("SOURCEOS_VERIFY_ALLOW_LEGACY", "sign", "`mage verify` accepts a legacy (non-prehashed, `Ed`) minisign signature, read whole into memory; not a shell bundle (SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE).", func(c *Config) *bool { return &c.AllowLegacySig }),
	boolean("SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE", "sign", "`mage verify` accepts a bundle the old shell pipeline signed (no DSSE envelope): checks its minisign signature and subject digest, prints what it lacks. Not about the algorithm (SOURCEOS_VERIFY_ALLOW_LEGACY).", func(c *Config) *bool { return &c.AllowShellBundle }),
	boolean("SOURCEOS_VERIFY_ALLOW_CUSTOM", "sign", "`mage verify` accepts a self-serve custom build (refused by default: it is not a release).", func(c *Config) *bool { return &c.VerifyAllowCustom }),
	str("SOURCEOS_VERIFY_BUILD_ID", "sign", "", "`mage verify` requires this build id in the signed provenance, and accepts a custom build with it.", func(c *Config) *string { return &c.VerifyBuildID }),
	multiline(str("SOURCEOS_CUSTOM_SIGN_PUBKEY", "sign", "", "minisign public key of custom builds, when they have their own key (as SOURCEOS_SIGN_PUBKEY): what it signs verifies only as a custom build.", func(c *Config) *string { return &c.CustomSignPubKey })),
	list("STORE_PATHS", "sign", "", "Store paths or installables of the image, space-separated, for `mage sign`: the SBOM lists their runtime closure (`nix path-info --recursive`); empty: no SBOM.", func(c *Config) *[]string { return &c.StorePaths }),
	boolean("SOURCEOS_REBUILD_CHECK", "sign", "Build the image derivation a second time (`nix build --rebuild`) and record in the provenance whether the result was bit for bit the same.", func(c *Config) *bool { return &c.RebuildCheck }),
	boolean("SOURCEOS_REQUIRE_REPRODUCIBLE", "sign", "Build: run the rebuild check and fail when the image differs. Verify: fail unless the signed provenance records a reproducible rebuild.", func(c *Config) *bool { return &c.RequireReproducible }),

	duration("SOURCEOS_VERIFY_TIMEOUT", "sign", DefaultVerifyTimeout, "Verify by URL: deadline of the whole run.", func(c *Config) *time.Duration { return &c.VerifyTimeout }),
	duration("SOURCEOS_VERIFY_HEADER_TIMEOUT", "sign", DefaultVerifyHeaderTimeout, "Verify by URL: longest wait for a response.", func(c *Config) *time.Duration { return &c.VerifyHeaderTimeout }),
	duration("SOURCEOS_VERIFY_IDLE_TIMEOUT", "sign", DefaultVerifyIdleTimeout, "Verify by URL: longest a download may stall.", func(c *Config) *time.Duration { return &c.VerifyIdleTimeout }),
	checked(integer("SOURCEOS_VERIFY_MIN_RATE", "sign", strconv.Itoa(DefaultVerifyMinRate), "Verify by URL: KiB/s a download must average per minute.", func(c *Config) *int { return &c.VerifyMinRate }), atMost(1<<20)),

	boolean("SOURCEOS_CHECK_JSON", "check", "Print check:contracts results as JSON.", func(c *Config) *bool { return &c.CheckJSON }),
	str("SOURCEOS_CHECK_HOST_MODE", "check", "auto", "How host facts are evaluated: auto (the flake's nixosConfigurations when its locked inputs are in the Nix store or can be fetched within a minute, else the host modules against stand-ins), nixos or module.", func(c *Config) *string { return &c.CheckHostMode }),

	boolean("CI", "env", "Set by CI: a test missing a tool fails, not skips; a secret also in the environment of a process that started mage fails the run.", func(c *Config) *bool { return &c.CI }),
	str("GITHUB_ENV", "env", "", "Set by GitHub Actions; `keys:files` adds `<NAME>_FILE` to it.", func(c *Config) *string { return &c.GitHubEnv }),
	str("GITHUB_OUTPUT", "env", "", "Set by GitHub Actions; `catalog:matrix` writes `matrix=<json>` to it.", func(c *Config) *string { return &c.GitHubOutput }),
	checked(str("GITHUB_RUN_ID", "env", "", "Set by GitHub Actions: the workflow run, which a custom build's status.json names (`run`).", func(c *Config) *string { return &c.GitHubRunID }), checkRunID),
	str("STORAGE_EMULATOR_HOST", "env", "", "Set by tests: every GCS request (the client library's, and the batch requests beside it) goes to this emulator, host:port or URL, instead of Google's storage API.", func(c *Config) *string { return &c.GCSEmulatorHost }),
}

// Env looks a variable up; os.LookupEnv has this shape.
type Env func(name string) (string, bool)

// FromEnv loads the configuration from the process environment; <NAME>_FILE
// secrets are read with ReadSecretFile.
func FromEnv() (*Config, error) { return Load(ProcessEnv, ReadSecretFile) }

// GCSEmulatorHost is STORAGE_EMULATOR_HOST of the process environment. The
// GCS client library reads it by itself; code that talks to GCS beside the
// library (internal/blob's batch requests) asks here, so that it goes
// where the library goes.
func GCSEmulatorHost() string {
	v, _ := ProcessEnv("STORAGE_EMULATOR_HOST")
	return strings.TrimSpace(v)
}

// ProcessEnv looks a variable up in the process environment; it is the one
// Env every lane starts from.
func ProcessEnv(name string) (string, bool) { return os.LookupEnv(name) }

// Load builds a Config from env. A secret variable may instead name a file in
// <NAME>_FILE, read with readFile; giving both is an error. The file's
// trailing line breaks are not part of the value (a password file written
// by an editor ends in one), so both forms of the same value load the same.
func Load(env Env, readFile func(string) ([]byte, error)) (*Config, error) {
	c := &Config{sources: map[string]string{}}
	var errs []error
	for _, v := range Vars {
		val, src, err := lookup(v, env, readFile)
		if err == nil {
			err = v.validate(val)
		}
		if err == nil {
			err = v.set(c, val)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
			continue
		}
		c.sources[v.Name] = src
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

func lookup(v Var, env Env, readFile func(string) ([]byte, error)) (val, src string, err error) {
	val, ok := env(v.Name)
	if v.Secret {
		path, hasFile := env(v.Name + "_FILE")
		switch {
		case hasFile && path != "" && ok && val != "":
			return "", "", fmt.Errorf("set either %s or %s_FILE, not both", v.Name, v.Name)
		case hasFile && path != "":
			b, err := readFile(path)
			if err != nil {
				return "", "", fmt.Errorf("read %s_FILE: %w", v.Name, err)
			}
			return strings.TrimRight(string(b), "\r\n"), "file", nil
		}
	}
	if ok {
		return val, "env", nil
	}
	return v.Default, "default", nil
}

// Lookup returns the declaration of a variable.
func Lookup(name string) (Var, bool) {
	for _, v := range Vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// SecretNames lists the variables that must not reach child processes,
// including their _FILE forms.
func SecretNames() []string {
	var names []string
	for _, v := range Vars {
		if v.Secret {
			names = append(names, v.Name, v.Name+"_FILE")
		}
	}
	sort.Strings(names)
	return names
}

// SecretsSet lists the secret variables that hold a value.
func (c *Config) SecretsSet() []string {
	var out []string
	for _, v := range Vars {
		if v.Secret && v.get(c) != "" {
			out = append(out, v.Name)
		}
	}
	return out
}

// SecretValues returns the secret values that are set, for redaction.
func (c *Config) SecretValues() []string {
	var out []string
	for _, v := range Vars {
		if v.Secret {
			if s := v.get(c); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// Redactor returns a redactor for every secret value of c.
func (c *Config) Redactor() *redact.Redactor { return redact.New(c.SecretValues()...) }

// Entry is one line of the effective configuration.
type Entry struct {
	Name   string `json:"name"`
	Group  string `json:"group"`
	Value  string `json:"value"`
	Source string `json:"source"` // env, file or default
	Secret bool   `json:"secret,omitempty"`
}

// Effective lists every variable with its value, secrets redacted.
func (c *Config) Effective() []Entry {
	out := make([]Entry, 0, len(Vars))
	for _, v := range Vars {
		val := v.get(c)
		if v.Secret && val != "" {
			val = redact.Mask
		}
		out = append(out, Entry{Name: v.Name, Group: v.Group, Value: val, Source: c.sources[v.Name], Secret: v.Secret})
	}
	return out
}

func str(name, group, def, desc string, field func(*Config) *string) Var {
	return Var{Name: name, Group: group, Default: def, Description: desc, check: checkPrintable,
		set: func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return *field(c) }}
}

// multiline lets v hold line breaks (a key file's contents), still no other
// control character.
func multiline(v Var) Var {
	v.check = func(s string) error {
		return checkPrintable(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", ""), "\n", ""))
	}
	return v
}

// checked adds a value check to v, after v's own.
func checked(v Var, check func(string) error) Var {
	own := v.check
	v.check = func(s string) error {
		if own != nil {
			if err := own(s); err != nil {
				return err
			}
		}
		return check(s)
	}
	return v
}

func (v Var) validate(val string) error {
	if v.check == nil {
		return nil
	}
	return v.check(strings.TrimSpace(val))
}

func secret(name, group, desc string, field func(*Config) *Secret) Var {
	return Var{Name: name, Group: group, Description: desc, Secret: true,
		set: func(c *Config, v string) error { *field(c) = Secret{v: v}; return nil },
		get: func(c *Config) string { return field(c).v }}
}

func list(name, group, def, desc string, field func(*Config) *[]string) Var {
	return Var{Name: name, Group: group, Default: def, Description: desc, check: checkPrintable,
		set: func(c *Config, v string) error { *field(c) = strings.Fields(v); return nil },
		get: func(c *Config) string { return strings.Join(*field(c), " ") }}
}

func boolean(name, group, desc string, field func(*Config) *bool) Var {
	return Var{Name: name, Group: group, Default: "0", Description: desc,
		set: func(c *Config, v string) error {
			b, err := parseBool(v)
			*field(c) = b
			return err
		},
		get: func(c *Config) string {
			if *field(c) {
				return "1"
			}
			return "0"
		}}
}

func integer(name, group, def, desc string, field func(*Config) *int) Var {
	return Var{Name: name, Group: group, Default: def, Description: desc,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return fmt.Errorf("want a positive integer, got %q", v)
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) }}
}

// duration is a positive Go duration (`30s`, `5m`, `6h`).
func duration(name, group string, def time.Duration, desc string, field func(*Config) *time.Duration) Var {
	return Var{Name: name, Group: group, Default: formatDuration(def), Description: desc,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration such as 30s, 5m or 6h, got %q", v)
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return formatDuration(*field(c)) }}
}

// formatDuration drops the zero minutes and seconds time.Duration prints
// (6h, not 6h0m0s).
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// defaultOn makes a boolean variable default to 1.
func defaultOn(v Var) Var {
	v.Default = "1"
	return v
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, fmt.Errorf("want 1/0, true/false, yes/no or on/off, got %q", v)
}
