// Package release lays out a release as users download it (`mage
// release:prepare`): every artifact the build jobs left is verified with
// the public key; SHA256SUMS lists every file with its SHA-256 and is
// signed (SHA256SUMS.minisig), so `sha256sum -c` and `minisign -V` alone
// check a download; files GitHub does not take (2 GiB and over) go to the
// artifacts bucket with their sidecars, and the release notes link them;
// what GitHub takes is laid out in one directory for the release action.
// Nothing is uploaded unless every artifact verifies and every file has a
// place to go.
package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/verify"
)

// GitHubAssetLimit is the size from which GitHub refuses a release asset:
// every file must be under 2 GiB.
const GitHubAssetLimit = 2 << 30

// Names of what Prepare writes.
const (
	SumsFile   = "SHA256SUMS"
	AssetsDir  = "assets"           // what the GitHub release takes
	NotesFile  = "release-notes.md" // the release's body
	sumsSigExt = sidecar.ExtMinisig
)

// Options say what to prepare.
type Options struct {
	// Dir holds every artifact of the release and its sidecars (OUT).
	Dir string
	// Tag names the release (its notes' title).
	Tag string
	// PublicKey verifies every artifact; SecretKey and Password sign
	// SHA256SUMS.
	PublicKey           string
	SecretKey, Password config.Secret
	// BuildID goes into SHA256SUMS.minisig's trusted comment.
	BuildID string
	// GCSPrefix is where files too large for GitHub go; "" fails a
	// release that has one.
	GCSPrefix string
	// Limit is GitHubAssetLimit unless set (tests).
	Limit int64
	// OpenStore opens GCSPrefix (blob.Open when nil).
	OpenStore func(ctx context.Context, location string) (blob.Store, error)
	Now       func() time.Time
	Log       *slog.Logger
}

func (o *Options) defaults() {
	if o.Limit <= 0 {
		o.Limit = GitHubAssetLimit
	}
	if o.OpenStore == nil {
		o.OpenStore = func(ctx context.Context, l string) (blob.Store, error) { return blob.Open(ctx, l) }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// File is one file of the release and where users get it.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// URL is set for a file published to the bucket instead of GitHub.
	URL string `json:"url,omitempty"`
}

// Plan is what Prepare did.
type Plan struct {
	Artifacts []string `json:"artifacts"` // the files verified
	Files     []File   `json:"files"`     // every file, SHA256SUMS order
	InBucket  []string `json:"inBucket,omitempty"`
	AssetsDir string   `json:"assetsDir"`
	Notes     string   `json:"notes"`
}

// Prepare verifies, sums, signs and lays out the release in o.Dir (see the
// package comment).
func Prepare(ctx context.Context, o Options) (*Plan, error) {
	o.defaults()
	if !o.SecretKey.IsSet() {
		return nil, errors.New("release: SHA256SUMS must be signed: set SOURCEOS_SIGN_SECRET_KEY (or _FILE)")
	}
	names, err := releaseFiles(o.Dir)
	if err != nil {
		return nil, err
	}
	p := &Plan{AssetsDir: filepath.Join(o.Dir, AssetsDir), Notes: filepath.Join(o.Dir, NotesFile)}
	if p.Artifacts, err = verifyAll(ctx, o, names); err != nil {
		return nil, err
	}
	if p.Files, err = sumAll(o.Dir, names); err != nil {
		return nil, err
	}
	big := oversize(p.Files, o.Limit)
	if len(big) > 0 && o.GCSPrefix == "" {
		return nil, fmt.Errorf("release: %s is 2 GiB or more, which GitHub does not take, and GCS_PREFIX is not set: nowhere to publish it", strings.Join(big, ", "))
	}
	if err := writeSums(o, p.Files); err != nil {
		return nil, err
	}
	if err := publishBig(ctx, o, p, big); err != nil {
		return nil, err
	}
	if err := layOut(o, p, big); err != nil {
		return nil, err
	}
	return p, os.WriteFile(p.Notes, []byte(notes(o, p)), 0o644)
}

// releaseFiles are the regular files of dir, sorted, without what Prepare
// writes itself.
func releaseFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || n == SumsFile || n == SumsFile+sumsSigExt || n == NotesFile || strings.HasPrefix(n, ".") {
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("release: %s holds no files", dir)
	}
	return names, nil
}

// isArtifact reports whether name is a signed artifact: not a sidecar,
// and its DSSE envelope is among names.
func isArtifact(name string, names []string) bool {
	return sidecar.Of(name) == "" && slices.Contains(names, name+sidecar.ExtDSSE)
}

// verifyAll verifies every artifact with the public key, as a user will;
// a release with any artifact that does not verify is refused, as is one
// with none.
func verifyAll(ctx context.Context, o Options, names []string) ([]string, error) {
	var artifacts []string
	var errs []error
	for _, n := range names {
		if !isArtifact(n, names) {
			continue
		}
		artifacts = append(artifacts, n)
		if _, err := verify.Verify(ctx, verify.VerifyOptions{Artifact: filepath.Join(o.Dir, n), PublicKey: o.PublicKey}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	if len(artifacts) == 0 {
		return nil, fmt.Errorf("release: no signed artifact in %s", o.Dir)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("release: an artifact does not verify; nothing was published:\n%w", err)
	}
	return artifacts, nil
}

// sumAll hashes every file.
func sumAll(dir string, names []string) ([]File, error) {
	files := make([]File, 0, len(names))
	for _, n := range names {
		d, err := digest.File(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		files = append(files, File{Name: n, Size: d.Size, SHA256: d.SHA256Hex()})
	}
	return files, nil
}

// oversize names the files GitHub does not take; an artifact's sidecars
// go with it (publishBig).
func oversize(files []File, limit int64) []string {
	var out []string
	for _, f := range files {
		if f.Size >= limit {
			out = append(out, f.Name)
		}
	}
	return out
}

// writeSums writes SHA256SUMS (sha256sum's format) and its minisign
// signature.
func writeSums(o Options, files []File) error {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Name)
	}
	path := filepath.Join(o.Dir, SumsFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	d, err := digest.File(path)
	if err != nil {
		return err
	}
	key, err := signature.ParseSecretKey([]byte(o.SecretKey.Reveal()), o.Password.Reveal())
	if err != nil {
		return fmt.Errorf("release: signing key: %w", err)
	}
	defer key.Wipe()
	sig, err := key.SignDigest(d.BLAKE2b512, signature.Comment{Timestamp: o.Now(), File: SumsFile, BuildID: o.BuildID})
	if err != nil {
		return fmt.Errorf("release: sign %s: %w", SumsFile, err)
	}
	return os.WriteFile(path+sumsSigExt, sig, 0o644)
}

// publishBig uploads each oversize file, its sidecars and the signed sums
// to GCSPrefix, sidecars first, and records their URLs.
func publishBig(ctx context.Context, o Options, p *Plan, big []string) error {
	if len(big) == 0 {
		return nil
	}
	store, err := o.OpenStore(ctx, o.GCSPrefix)
	if err != nil {
		return fmt.Errorf("release: GCS_PREFIX %s: %w", o.GCSPrefix, err)
	}
	var names []string
	for _, n := range big {
		for _, ext := range sidecar.SidecarExts {
			if _, err := os.Stat(filepath.Join(o.Dir, n+ext)); err == nil {
				names = append(names, n+ext)
			}
		}
		names = append(names, n)
	}
	names = append(names, SumsFile, SumsFile+sumsSigExt)
	for _, n := range names {
		if err := upload(ctx, store, filepath.Join(o.Dir, n), n); err != nil {
			return err
		}
		o.Log.Info("published to the bucket", "url", store.URL(n))
	}
	for i, f := range p.Files {
		if slices.Contains(big, f.Name) {
			p.Files[i].URL = sidecar.Ref(o.GCSPrefix, f.Name)
			p.InBucket = append(p.InBucket, f.Name)
		}
	}
	return nil
}

func upload(ctx context.Context, store blob.Store, path, key string) error {
	if err := blob.PutFile(ctx, store, key, path, blob.PutOptions{ContentType: sidecar.ContentType(key)}, nil); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// layOut links every file GitHub takes into the assets directory: all but
// the oversize ones, plus SHA256SUMS and its signature.
func layOut(o Options, p *Plan, big []string) error {
	if err := os.RemoveAll(p.AssetsDir); err != nil {
		return err
	}
	if err := os.MkdirAll(p.AssetsDir, 0o755); err != nil {
		return err
	}
	names := []string{SumsFile, SumsFile + sumsSigExt}
	for _, f := range p.Files {
		if !slices.Contains(big, f.Name) {
			names = append(names, f.Name)
		}
	}
	for _, n := range names {
		if err := linkOrCopy(filepath.Join(o.Dir, n), filepath.Join(p.AssetsDir, n)); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	return nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// notes is the release's body: every artifact, where to get it, and how
// to check a download with minisign and sha256sum alone.
func notes(o Options, p *Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SourceOS %s\n\n| File | Size | SHA-256 | Where |\n|---|---|---|---|\n", o.Tag)
	for _, f := range p.Files {
		if !slices.Contains(p.Artifacts, f.Name) {
			continue
		}
		where := "this release"
		if f.URL != "" {
			where = fmt.Sprintf("[artifacts bucket](%s) (2 GiB or more: GitHub does not take it; its sidecars are there too)", f.URL)
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", f.Name, humanSize(f.Size), f.SHA256, where)
	}
	pub := strings.TrimSpace(o.PublicKey)
	if k, err := sidecar.LoadPublicKey(o.PublicKey); err == nil {
		pub = k.String()
	}
	fmt.Fprintf(&b, "\nCheck a download with the public key alone:\n\n```sh\nminisign -Vm SHA256SUMS -P %s\nsha256sum -c --ignore-missing SHA256SUMS\n```\n\n", pub)
	b.WriteString("`mage verify <file or its URL>` also checks its signed provenance, SBOM and OSImage document.\n")
	return b.String()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", (n+1023)/1024)
}
