package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
)

// ErrUnsigned is returned when a signature is required and no key is set.
var ErrUnsigned = errors.New("no signing key (SOURCEOS_SIGN_SECRET_KEY) but SOURCEOS_REQUIRE_SIGNATURE is set")

// KeyError means a signing key was given but cannot be used (bad key,
// wrong or missing password). Nothing is written when it happens.
type KeyError struct{ Err error }

func (e *KeyError) Error() string { return "signing key: " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Options say what to sign and how.
type Options struct {
	Kind      sidecar.Kind
	Artifacts []sidecar.Artifact
	Build     provenance.BuildInfo
	// Closure is the image's runtime closure (ISO only); nil: no SBOM.
	Closure []provenance.StorePath
	// SecretKey holds the minisign secret key file's contents; unset
	// means unsigned output. Password decrypts an encrypted key.
	SecretKey, Password config.Secret
	// RequireSignature turns unsigned output into an error.
	RequireSignature bool
	// GCSPrefix, when set, is where the sidecars are published; the
	// OSImage document's refs point there.
	GCSPrefix string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log receives one line per signed artifact (discarded when nil).
	Log *slog.Logger
}

// Result says what Sign wrote.
type Result struct {
	Signed    bool             `json:"signed"`
	KeyID     string           `json:"keyId,omitempty"`
	Artifacts []ArtifactResult `json:"artifacts"`
}

// ArtifactResult is one signed (or attested) artifact and its sidecars.
type ArtifactResult struct {
	Path     string         `json:"path"`
	Digests  digest.Digests `json:"-"`
	SHA256   string         `json:"sha256"`
	Sidecars []string       `json:"sidecars"` // full paths
}

// Write writes every sidecar of every artifact. Without a key it writes the
// unsigned ones (checksum, statement, predicate, SBOM, OSImage saying
// unsigned) and succeeds, unless RequireSignature is set. A key that does
// not load is a *KeyError and nothing is written.
func Write(ctx context.Context, opts Options) (*Result, error) {
	opts.defaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	key, err := loadKey(opts)
	if err != nil {
		return nil, err
	}
	if key != nil {
		defer key.Wipe()
	}
	// Bad build information fails here, before any artifact is hashed.
	if _, err := provenance.SLSAPredicate(opts.Build); err != nil {
		return nil, err
	}
	res := &Result{Signed: key != nil}
	if key != nil {
		res.KeyID = key.ID().String()
	}
	var files []file
	var stale []string
	for _, a := range opts.Artifacts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs, ar, err := sidecars(opts, key, a)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
		res.Artifacts = append(res.Artifacts, ar)
		stale = append(stale, staleSidecars(a.Path, fs)...)
	}
	// An earlier run's signature (or SBOM) beside output this run does not
	// sign (or describe) would vouch for the wrong thing.
	if err := removeIfExists(stale...); err != nil {
		return nil, fmt.Errorf("remove stale sidecars: %w", err)
	}
	if err := writeAll(signaturesLast(files)); err != nil {
		return nil, err
	}
	for _, ar := range res.Artifacts {
		opts.Log.Info("attested", "artifact", filepath.Base(ar.Path), "sha256", ar.SHA256, "signed", res.Signed, "key", res.KeyID)
	}
	return res, nil
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) check() error {
	if _, err := sidecar.KindOf(string(o.Kind)); err != nil {
		return err
	}
	if len(o.Artifacts) == 0 {
		return errors.New("sign: no artifacts")
	}
	if sidecar.IsImage(o.Kind) && len(o.Artifacts) != 1 {
		return fmt.Errorf("sign: an image (%s) is one artifact, got %d", o.Kind, len(o.Artifacts))
	}
	if !o.SecretKey.IsSet() && o.RequireSignature {
		return ErrUnsigned
	}
	return nil
}

// loadKey returns nil when no key is configured.
func loadKey(o Options) (*signature.SecretKey, error) {
	if !o.SecretKey.IsSet() {
		return nil, nil
	}
	k, err := signature.ParseSecretKey([]byte(o.SecretKey.Reveal()), o.Password.Reveal())
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	return k, nil
}

// sidecars builds the contents of one artifact's sidecars in memory. The
// documents about the artifact (SBOM, OSImage) come first: the predicate
// lists them as byproducts with their digests, so the one signature over
// the statement covers every document a user reads.
func sidecars(o Options, key *signature.SecretKey, a sidecar.Artifact) ([]file, ArtifactResult, error) {
	d, err := a.Hash()
	if err != nil {
		return nil, ArtifactResult{}, fmt.Errorf("sign: %w", err)
	}
	name := filepath.Base(a.Path)
	subject := provenance.Subject{Name: name, SHA256: d.SHA256Hex()}
	var docs []file
	if sidecar.IsImage(o.Kind) {
		if docs, err = imageDocuments(o, a.Path, subject, key != nil); err != nil {
			return nil, ArtifactResult{}, err
		}
	}
	predicate, err := provenance.SLSAPredicate(o.Build, byproducts(docs)...)
	if err != nil {
		return nil, ArtifactResult{}, err
	}
	statement, err := provenance.Statement([]provenance.Subject{subject}, predicate)
	if err != nil {
		return nil, ArtifactResult{}, err
	}
	fs := []file{
		{a.Path + sidecar.ExtSHA256, []byte(d.SHA256Hex() + "  " + name + "\n")},
		{a.Path + sidecar.ExtStatement, statement},
		{a.Path + sidecar.ExtSLSA, predicate},
	}
	if key != nil {
		sigs, err := signatures(o, key, a.Path, d, statement)
		if err != nil {
			return nil, ArtifactResult{}, err
		}
		fs = append(fs, sigs...)
	}
	fs = append(fs, docs...)
	ar := ArtifactResult{Path: a.Path, Digests: d, SHA256: d.SHA256Hex()}
	for _, f := range fs {
		ar.Sidecars = append(ar.Sidecars, f.path)
	}
	return fs, ar, nil
}

// byproducts describes the documents for the predicate.
func byproducts(docs []file) []provenance.Byproduct {
	out := make([]provenance.Byproduct, 0, len(docs))
	for _, f := range docs {
		sum := sha256.Sum256(f.data)
		out = append(out, provenance.Byproduct{Name: filepath.Base(f.path), SHA256: hex.EncodeToString(sum[:]), MediaType: sidecar.MediaType(f.path)})
	}
	return out
}

// signatures are the .minisig (prehashed, from the digest already computed)
// and the DSSE envelope of the statement.
func signatures(o Options, key *signature.SecretKey, path string, d digest.Digests, statement []byte) ([]file, error) {
	comment := signature.Comment{Timestamp: o.Now(), File: filepath.Base(path), BuildID: o.Build.BuildID}
	minisig, err := key.SignDigest(d.BLAKE2b512, comment)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	env, err := key.SignEnvelope(signature.PayloadTypeInToto, statement)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	return []file{{path + sidecar.ExtMinisig, minisig}, {path + sidecar.ExtDSSE, env}}, nil
}

// imageDocuments are the SBOM (when the closure is known) and the OSImage
// document, whose refs name the other sidecars.
func imageDocuments(o Options, path string, image provenance.Subject, signed bool) ([]file, error) {
	var fs []file
	name := filepath.Base(path)
	in := provenance.OSImageInput{
		Build: o.Build, Image: image, Signed: signed, Created: o.Now(),
		StatementRef:     sidecar.Ref(o.GCSPrefix, name+sidecar.ExtStatement),
		SLSAPredicateRef: sidecar.Ref(o.GCSPrefix, name+sidecar.ExtSLSA),
	}
	if o.Closure != nil {
		sbom, err := provenance.SBOM(image, o.Closure, o.Now())
		if err != nil {
			return nil, err
		}
		fs = append(fs, file{path + sidecar.ExtSBOM, sbom})
		in.SBOMRef = sidecar.Ref(o.GCSPrefix, name+sidecar.ExtSBOM)
	}
	if signed {
		in.SignatureRef = sidecar.Ref(o.GCSPrefix, name+sidecar.ExtMinisig)
	}
	doc, err := provenance.OSImage(in)
	if err != nil {
		return nil, err
	}
	return append(fs, file{path + sidecar.ExtOSImage, doc}), nil
}

// signaturesLast orders files so that signatures are renamed into place
// after everything they vouch for.
func signaturesLast(files []file) []file {
	out := make([]file, 0, len(files))
	var sigs []file
	for _, f := range files {
		if strings.HasSuffix(f.path, sidecar.ExtMinisig) || strings.HasSuffix(f.path, sidecar.ExtDSSE) {
			sigs = append(sigs, f)
			continue
		}
		out = append(out, f)
	}
	return append(out, sigs...)
}

// staleSidecars are the sidecar paths of artifact that this run does not
// write.
func staleSidecars(artifact string, written []file) []string {
	var out []string
	for _, ext := range sidecar.SidecarExts {
		p := artifact + ext
		if !slices.ContainsFunc(written, func(f file) bool { return f.path == p }) {
			out = append(out, p)
		}
	}
	return out
}
