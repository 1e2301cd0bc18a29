package nixcache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
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
// most maxRootSize bytes and is parsed strictly (no unknown or repeated
// member), so a malformed one costs a bounded read and is ignored.
//
// Pinned roots (written with NIX_CACHE_ROOT_PIN=1, by release builds) are
// never collected. An in-flight root is written by a push that relies on
// objects it did not write while a GC may be deleting (see lease.go); it
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
	rootsPrefix = "roots/"
	rootVersion = 1
	// maxRootSize bounds the bytes read of one root: 8 MiB hold the hash
	// parts of about 200,000 paths.
	maxRootSize = 8 << 20
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
	return rootsPrefix + r.Name + "/" + r.Time.UTC().Format(rootStamp) + "-" + idSegment(r.BuildID) + flag + ".json"
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

// sign sets Sig.
func (r *Root) sign(sk signature.SecretKey) error {
	sig, err := sk.Sign(nil, r.Fingerprint())
	if err != nil {
		return fmt.Errorf("sign root: %w", err)
	}
	r.Sig = sig.String()
	return nil
}

// rootKeyRe splits a root's object name.
var rootKeyRe = regexp.MustCompile(`^roots/([a-z0-9][a-z0-9._-]{0,79})/(\d{8}T\d{6}Z)-([A-Za-z0-9][A-Za-z0-9_-]{0,63})(\.pinned|\.inflight)?\.json$`)

// rootRef is what an object name says of a root, before it is read.
type rootRef struct {
	info     blob.Info
	name     string
	time     time.Time
	pinned   bool
	inflight bool
}

// parseRootKey reads a root's object name; ok is false for anything
// else under roots/.
func parseRootKey(info blob.Info) (rootRef, bool) {
	m := rootKeyRe.FindStringSubmatch(info.Key)
	if m == nil {
		return rootRef{}, false
	}
	t, err := time.Parse(rootStamp, m[2])
	if err != nil {
		return rootRef{}, false
	}
	return rootRef{info: info, name: m[1], time: t, pinned: m[4] == ".pinned", inflight: m[4] == ".inflight"}, true
}

// ParseRoot reads a root strictly and checks it: known members only, none
// twice, version 1, a valid name, store paths, hash parts and NAR names,
// the closure sorted without repeats, and a signature by pk over its
// fingerprint.
func ParseRoot(b []byte, pk signature.PublicKey) (*Root, error) {
	if len(b) > maxRootSize {
		return nil, fmt.Errorf("root: larger than %d bytes", maxRootSize)
	}
	var r Root
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	sig, err := signature.ParseSignature(r.Sig)
	if err != nil || !pk.Verify(r.Fingerprint(), sig) {
		return nil, fmt.Errorf("root: no signature by %s", pk.Name)
	}
	return &r, nil
}

func (r *Root) check() error {
	switch {
	case r.Version != rootVersion:
		return fmt.Errorf("version %d, want %d", r.Version, rootVersion)
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
		if !isHashPart(h) || (i > 0 && r.Closure[i-1] >= h) {
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

func isHashPart(h string) bool {
	if len(h) != 32 {
		return false
	}
	for i := range len(h) {
		if !strings.ContainsRune(nix32Alphabet, rune(h[i])) {
			return false
		}
	}
	return true
}

// readRoot reads and checks the root behind ref: it must parse, verify
// with pk and be stored under the name its content gives.
func readRoot(ctx context.Context, s blob.Store, ref rootRef, pk signature.PublicKey) (*Root, error) {
	rc, err := s.Open(ctx, ref.info.Key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxRootSize+1))
	if err != nil {
		return nil, err
	}
	r, err := ParseRoot(b, pk)
	if err != nil {
		return nil, err
	}
	if r.Key() != ref.info.Key {
		return nil, fmt.Errorf("root: stored as %s, its content names %s", ref.info.Key, r.Key())
	}
	return r, nil
}

// writeRoot signs and stores r (replacing an earlier version of the same
// name, which only an in-flight root has).
func writeRoot(ctx context.Context, p *pusher, r *Root) error {
	if err := r.sign(p.sk); err != nil {
		return err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return p.retry(ctx, func() error {
		return p.store.Put(ctx, r.Key(), bytes.NewReader(body),
			blob.PutOptions{ContentType: "application/json", SizeHint: int64(len(body)), Unbuffered: len(body) < 1<<20})
	})
}

// newRoot is the root of a session at time now.
func (s *Session) newRoot(tops []string, hashes []string) *Root {
	ro := s.p.o.Root
	name := ro.Name
	if name == "" {
		name = "push"
	}
	id := ro.BuildID
	if id == "" {
		id = s.buildID()
	}
	sort.Strings(hashes)
	hashes = dedupe(hashes)
	paths := append([]string(nil), tops...)
	sort.Strings(paths)
	return &Root{Version: rootVersion, Name: name, BuildID: id, Time: s.p.o.Now().UTC().Truncate(time.Second),
		Pinned: ro.Pin, Paths: dedupe(paths), Closure: hashes}
}

// buildID is the session's build id when none is configured: random,
// made once.
func (s *Session) buildID() string {
	s.idOnce.Do(func() {
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.id = "push-" + hex.EncodeToString(b[:])
	})
	return s.id
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, v := range sorted {
		if i == 0 || sorted[i-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// recordRoot writes the root of the session: tops and every path the
// session holds; then it removes the session's in-flight root, if any.
func (s *Session) recordRoot(ctx context.Context, tops []string) error {
	var hashes []string
	s.mu.Lock()
	for p, n := range s.nodes {
		if n.ok {
			hashes = append(hashes, nixstore.HashPart(p))
		}
	}
	s.mu.Unlock()
	r := s.newRoot(tops, hashes)
	if err := writeRoot(ctx, s.p, r); err != nil {
		return fmt.Errorf("cache push: record root %s: %w", r.Key(), err)
	}
	s.p.o.Log.Info("cache root recorded", "root", r.Key(), "paths", len(r.Closure))
	return s.dropInFlight(ctx)
}
