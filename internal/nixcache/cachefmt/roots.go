package cachefmt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/strictjson"
)

// A root is a small object under roots/ that names what one push (or one
// build) put in the cache, so that GC keeps it:
//
//	roots/<name>/<time>-<build id>[.pinned|.inflight].json
//
// holding the JSON of Root: the top-level store paths, the hash parts of
// every path of the push, the name (edition and channel of a build, or
// NIX_CACHE_ROOT), the build id, the time, and a signature by the cache
// key over all of it (Fingerprint). GC reads only roots whose signature
// verifies and whose object name is the one their content gives, so a
// root planted by someone who can write to the bucket but does not hold
// the key is ignored: it can neither keep anything alive nor push a real
// root out of the newest NIX_CACHE_GC_KEEP_LAST of its name. A root is at
// most MaxRootSize bytes and is parsed strictly (no unknown or repeated
// member), so a malformed one costs a bounded read and is ignored.
//
// Pinned roots (written with NIX_CACHE_ROOT_PIN=1, by release builds) are
// never collected. An in-flight root is written by a push that relies on
// objects it did not write while a GC may be deleting (see package lease); it
// keeps what it names while it is younger than the grace period.
type Root struct {
	Version  int       `json:"version"`
	Name     string    `json:"name"`
	BuildID  string    `json:"buildId"`
	Time     time.Time `json:"time"`
	Pinned   bool      `json:"pinned,omitempty"`
	InFlight bool      `json:"inflight,omitempty"`
	// Paths are the top-level store paths.
	Paths []string `json:"paths"`
	// Closure holds the hash part of every path the root keeps, sorted.
	Closure []string `json:"closure"`
	// NARs are NAR objects an in-flight root keeps besides those of its
	// closure's narinfos (NARs a push found already stored), sorted.
	NARs []string `json:"nars,omitempty"`
	// Sig is the cache key's signature over Fingerprint, name:base64.
	Sig string `json:"sig"`
}

const (
	// RootsPrefix is where roots are stored.
	RootsPrefix = "roots/"
	// RootVersion is the version of Root.
	RootVersion = 1
	// MaxRootSize bounds the bytes read of one root: 8 MiB hold the hash
	// parts of about 200,000 paths.
	MaxRootSize = 8 << 20
	rootStamp   = "20060102T150405Z"
)

// RootNameRe is what a root name may be: lower case letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most 80 characters.
var RootNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,79}$`)

// buildIDRe is a build id that appears as it is in object names (no dot,
// which would blur the name's suffix).
var buildIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// RootName makes a valid root name of parts: lower case, every other
// character than [a-z0-9._-] turned into '-', joined by '-'.
func RootName(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for _, r := range strings.ToLower(p) {
			if r < 0x80 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				b.WriteRune(r)
			} else {
				b.WriteByte('-')
			}
		}
	}
	name := strings.TrimLeft(b.String(), "._-")
	if len(name) > 80 {
		name = name[:80]
	}
	if name == "" {
		return "root"
	}
	return name
}

// idSegment is the build id as it appears in object names: itself when
// it is a plain name, else a hash of it.
func idSegment(id string) string {
	if buildIDRe.MatchString(id) {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(h[:8])
}

// Key is the object name of the root.
func (r *Root) Key() string {
	flag := ""
	switch {
	case r.InFlight:
		flag = ".inflight"
	case r.Pinned:
		flag = ".pinned"
	}
	return RootsPrefix + r.Name + "/" + r.Time.UTC().Format(rootStamp) + "-" + idSegment(r.BuildID) + flag + ".json"
}

// Fingerprint is what the cache key signs: every field but the signature,
// prefixed so that it can be neither a narinfo fingerprint nor a push
// proof.
func (r *Root) Fingerprint() string {
	flags := ""
	if r.Pinned {
		flags += "pinned"
	}
	if r.InFlight {
		flags += "inflight"
	}
	return fmt.Sprintf("sourceos-cache-root;%d;%s;%s;%s;%s;%s;%s;%s", r.Version, r.Name, r.BuildID,
		r.Time.UTC().Format(time.RFC3339), flags, digestOf(r.Paths), digestOf(r.Closure), digestOf(r.NARs))
}

func digestOf(items []string) string {
	h := sha256.New()
	for _, s := range items {
		io.WriteString(h, s)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Sign sets Sig.
func (r *Root) Sign(sk signature.SecretKey) error {
	sig, err := sk.Sign(nil, r.Fingerprint())
	if err != nil {
		return fmt.Errorf("sign root: %w", err)
	}
	r.Sig = sig.String()
	return nil
}

// rootKeyRe splits a root's object name.
var rootKeyRe = regexp.MustCompile(`^roots/([a-z0-9][a-z0-9._-]{0,79})/(\d{8}T\d{6}Z)-([A-Za-z0-9][A-Za-z0-9_-]{0,63})(\.pinned|\.inflight)?\.json$`)

// RootRef is what an object name says of a root, before it is read.
type RootRef struct {
	Info     blob.Info
	Name     string
	Time     time.Time
	Pinned   bool
	InFlight bool
}

// ParseRootKey reads a root's object name; ok is false for anything
// else under roots/.
func ParseRootKey(info blob.Info) (RootRef, bool) {
	m := rootKeyRe.FindStringSubmatch(info.Key)
	if m == nil {
		return RootRef{}, false
	}
	t, err := time.Parse(rootStamp, m[2])
	if err != nil {
		return RootRef{}, false
	}
	return RootRef{Info: info, Name: m[1], Time: t, Pinned: m[4] == ".pinned", InFlight: m[4] == ".inflight"}, true
}

// ErrInvalidRoot marks a root that was read but is not one to trust (it
// does not parse, verify or match its name), as opposed to one that could
// not be read: a reader may ignore the first, never the second.
var ErrInvalidRoot = errors.New("root")

// ParseRoot reads a root strictly and checks it: known members only, none
// twice, version 1, a valid name, store paths, hash parts and NAR names,
// the closure sorted without repeats, and a signature by pk over its
// fingerprint.
func ParseRoot(b []byte, pk signature.PublicKey) (*Root, error) {
	if len(b) > MaxRootSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidRoot, MaxRootSize)
	}
	var r Root
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRoot, err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRoot, err)
	}
	sig, err := signature.ParseSignature(r.Sig)
	if err != nil || !pk.Verify(r.Fingerprint(), sig) {
		return nil, fmt.Errorf("%w: no signature by %s", ErrInvalidRoot, pk.Name)
	}
	return &r, nil
}

func (r *Root) check() error {
	switch {
	case r.Version != RootVersion:
		return fmt.Errorf("version %d, want %d", r.Version, RootVersion)
	case !RootNameRe.MatchString(r.Name):
		return fmt.Errorf("name %q is not a root name", r.Name)
	case len(r.BuildID) > 256 || strings.ContainsAny(r.BuildID, "\x00\n\r;"):
		return errors.New("build id too long or with control characters")
	case r.Time.IsZero():
		return errors.New("no time")
	case r.Pinned && r.InFlight:
		return errors.New("both pinned and in flight")
	}
	for _, p := range r.Paths {
		if err := nixstore.ValidatePath(p); err != nil {
			return err
		}
	}
	for i, h := range r.Closure {
		if !IsHashPart(h) || (i > 0 && r.Closure[i-1] >= h) {
			return fmt.Errorf("closure entry %q is not a hash part in order", h)
		}
	}
	for _, k := range r.NARs {
		if !strings.HasPrefix(k, "nar/") || strings.ContainsAny(k, " \n") {
			return fmt.Errorf("NAR %q is not a NAR object", k)
		}
	}
	return nil
}

// ReadRoot reads and checks the root behind ref: it must parse, verify
// with pk and be stored under the name its content gives (ErrInvalidRoot
// otherwise; any other error is the store's).
func ReadRoot(ctx context.Context, s blob.Store, ref RootRef, pk signature.PublicKey) (*Root, error) {
	rc, err := s.Open(ctx, ref.Info.Key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxRootSize+1))
	if err != nil {
		return nil, err
	}
	r, err := ParseRoot(b, pk)
	if err != nil {
		return nil, err
	}
	if r.Key() != ref.Info.Key {
		return nil, fmt.Errorf("%w: stored as %s, its content names %s", ErrInvalidRoot, ref.Info.Key, r.Key())
	}
	return r, nil
}
