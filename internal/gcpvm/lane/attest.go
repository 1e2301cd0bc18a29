package lane

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/buildrecord"
	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/spec"
	"github.com/socioprophet/sourceos/internal/verify"
)

// MaxImageBytes bounds the image a signer downloads.
const MaxImageBytes = 64 << 30

// AttestOptions configure Sign.
type AttestOptions struct {
	// Cfg holds the keys, GCS_PREFIX of the build, and the facts the
	// dispatcher vouches for (VERSION, SOURCE_REPO, SOURCE_REV, BUILD_ID,
	// SOURCEOS_CHANNEL, SOURCEOS_FLAKE).
	Cfg *config.Config
	// Spec is the spec as it was dispatched; the build record must name
	// exactly this spec.
	Spec      []byte
	OpenStore gcpvm.StoreOpener // nil: blob.Open
	Log       *slog.Logger      // nil: discarded
	Now       func() time.Time  // nil: time.Now
	TempDir   string            // where the image is downloaded; "": the system's
}

func (o *AttestOptions) defaults() {
	if o.OpenStore == nil {
		o.OpenStore = func(ctx context.Context, p string) (blob.Store, error) { return blob.Open(ctx, p) }
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Attest is `mage gcp:attest`, the trusted half of a custom build. It runs on
// a machine that holds the keys and never builds anything: it reads the
// build's status (it must say built) and build record from GCS_PREFIX,
// downloads every file of the artifact (TARGET: an ISO, or a netboot set)
// while hashing it itself, refuses a file whose digest is not the one
// recorded, signs them and writes their provenance, verifies the result,
// uploads the sidecars and sets the status to complete. On failure the
// status says error. The artifact is a custom build's, named after the
// user and the build (catalog.CustomName); its provenance's facts come from
// this machine's configuration and catalog and the dispatched spec (its
// digest as received and its normalised form); only the closure and the
// build times are the builder's word, and the builder id
// (provenance.CustomBuilderID) says the build ran on a machine without
// keys.
func Attest(ctx context.Context, o AttestOptions) error {
	o.defaults()
	if o.Cfg.GCSPrefix == "" {
		return errors.New("gcp:attest: GCS_PREFIX is not set: it names the build to sign")
	}
	if err := gcpvm.CheckIDs(o.Cfg); err != nil {
		return fmt.Errorf("gcp:attest: %w", err)
	}
	store, err := o.OpenStore(ctx, o.Cfg.GCSPrefix)
	if err != nil {
		return fmt.Errorf("gcp:attest: open %s: %w", o.Cfg.GCSPrefix, err)
	}
	st, ok, err := gcpvm.ReadStatus(ctx, store)
	switch {
	case err != nil:
		return fmt.Errorf("gcp:attest: %w", err)
	case !ok:
		return fmt.Errorf("gcp:attest: no %s in %s: nothing was built there", gcpvm.StatusKey, o.Cfg.GCSPrefix)
	case st.State != gcpvm.Built:
		return fmt.Errorf("gcp:attest: %s says %q: only a build that says %q is signed", gcpvm.StatusKey, st.State, gcpvm.Built)
	}
	s := &signer{o: o, store: store, status: st}
	url, signErr := s.run(ctx)
	return errors.Join(signErr, s.finish(ctx, url, signErr))
}

type signer struct {
	o      AttestOptions
	store  blob.Store
	status gcpvm.Status
}

// run does the signing and returns the URL of the artifact's main file
// (the image, or a netboot set's manifest).
func (s *signer) run(ctx context.Context) (string, error) {
	if key, _ := signingKey(s.o.Cfg); !key.IsSet() && s.o.Cfg.RequireSignature {
		return "", fmt.Errorf("%w: give the custom builds' key as SOURCEOS_CUSTOM_SIGN_SECRET_KEY (or _FILE)", attest.ErrUnsigned)
	}
	cat, err := catalog.Resolve(ctx, &execx.Exec{SecretNames: config.SecretNames()}, catalog.FlakeRef(s.o.Cfg.Flake), s.o.Cfg.Catalog)
	if err != nil {
		return "", err
	}
	sp, err := spec.Parse(bytes.NewReader(s.o.Spec), spec.Options{AllowModuleSnippet: true, Editions: cat.CustomEditions()})
	if err != nil {
		return "", err
	}
	custom, err := image.NewCustom(sp, s.o.Spec, s.o.Cfg.BuildUID, s.o.Cfg.BuildID)
	if err != nil {
		return "", err
	}
	in, err := image.CustomInstance(cat, sp, catalog.Kind(s.o.Cfg.Target), custom)
	if err != nil {
		return "", err
	}
	rec, err := s.record(ctx, in, sp, custom)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(s.o.TempDir, "sourceos-sign-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	arts, err := s.downloadAll(ctx, rec, dir)
	if err != nil {
		return "", err
	}
	if in.Kind() == catalog.Netboot {
		if err := s.checkManifestVersion(arts[len(arts)-1].Path); err != nil {
			return "", err
		}
	}
	key, password := signingKey(s.o.Cfg)
	res, err := attest.Write(ctx, attest.Options{
		Kind: in.Kind(), Artifacts: arts,
		Build: attest.BuildInfo(s.o.Cfg, attest.Facts{Instance: in, Hostname: sp.Hostname, Custom: custom,
			StartedOn: rec.StartedOn, FinishedOn: rec.FinishedOn}),
		Closure:   closureOf(rec),
		SecretKey: key, Password: password,
		RequireSignature: s.o.Cfg.RequireSignature, GCSPrefix: s.o.Cfg.GCSPrefix,
		Now: s.o.Now, Log: s.o.Log,
	})
	if err != nil {
		return "", err
	}
	main := arts[len(arts)-1] // the image, or the netboot manifest (the set's last file)
	if err := s.verify(ctx, main, res.Signed, custom.BuildID); err != nil {
		return "", err
	}
	for _, ar := range res.Artifacts {
		if err := s.upload(ctx, filepath.Base(ar.Path), ar.Sidecars); err != nil {
			return "", err
		}
	}
	// The record was the builder's word, for this step only: what it
	// said that the signature vouches for is in the provenance now, and
	// nothing unsigned stays beside a signed image.
	if err := s.store.Delete(ctx, rec.Artifact+buildrecord.Ext); err != nil {
		return "", fmt.Errorf("remove the build record: %w", err)
	}
	s.status.Signed = res.Signed
	return s.store.URL(filepath.Base(main.Path)), nil
}

// record reads the build record and checks that it describes this spec's
// artifact, as received here, with the files an artifact of its kind has.
func (s *signer) record(ctx context.Context, in catalog.Instance, sp *spec.Spec, c *provenance.Custom) (*buildrecord.Record, error) {
	name := in.File()
	r, err := s.store.Open(ctx, name+buildrecord.Ext)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name+buildrecord.Ext, err)
	}
	defer r.Close()
	rec, err := buildrecord.Read(r)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.Artifact != name || rec.Edition != sp.Edition || rec.Arch != sp.Arch || rec.Target != string(in.Kind()):
		return nil, fmt.Errorf("build record describes %s (%s, %s, %s), want %s (%s)", rec.Artifact, rec.Edition, rec.Arch, rec.Target, name, in.Kind())
	case !sameJSON(rec.Spec, c.Spec):
		return nil, errors.New("build record names another spec than the one dispatched")
	case rec.SpecSHA256 != c.SpecSHA256:
		return nil, fmt.Errorf("build record says the builder received a spec with sha256 %s, the one dispatched has %s", rec.SpecSHA256, c.SpecSHA256)
	case rec.Hostname != sp.Hostname:
		return nil, fmt.Errorf("build record names host %q, the spec %q", rec.Hostname, sp.Hostname)
	}
	want := fileNames(in)
	got := make([]string, 0, len(rec.Files))
	for _, f := range rec.Files {
		got = append(got, f.Name)
	}
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("build record lists files %v, an artifact of kind %s has %v", got, in.Kind(), want)
	}
	return rec, nil
}

// fileNames are the files of an artifact, in the order they are signed: an
// image is one file; a netboot set its kernel, initrd, iPXE script and
// manifest.
func fileNames(in catalog.Instance) []string {
	base := in.File()
	if in.Kind() != catalog.Netboot {
		return []string{base}
	}
	return []string{base + "-kernel", base + "-initrd", base + ".ipxe", sidecar.ManifestName}
}

// checkManifestVersion refuses a netboot set whose manifest names another
// version than this signer's VERSION before anything is signed: signed,
// the set would fail verification (the manifest and the provenance must
// agree), so say which value differs and where it comes from.
func (s *signer) checkManifestVersion(path string) error {
	raw, err := sidecar.ReadLimited(path, sidecar.MaxManifestSize)
	if err != nil {
		return err
	}
	m, err := sidecar.ParseManifest(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", sidecar.ManifestName, err)
	}
	if m.Version != s.o.Cfg.Version {
		return fmt.Errorf("the build stamped version %q into %s, this signer's VERSION is %q: sign with the version the build was given (attest-custom.yml: client_payload.version)",
			m.Version, sidecar.ManifestName, s.o.Cfg.Version)
	}
	return nil
}

// sameJSON compares two JSON texts byte for byte once compacted.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// downloadAll downloads every file the record lists into dir, hashing each
// in the same pass, and refuses a file that is not the one recorded.
func (s *signer) downloadAll(ctx context.Context, rec *buildrecord.Record, dir string) ([]sidecar.Artifact, error) {
	var total int64
	arts := make([]sidecar.Artifact, 0, len(rec.Files))
	for _, f := range rec.Files {
		if total += f.Size; total > MaxImageBytes {
			return nil, fmt.Errorf("the build's files add up to more than the %d bytes a signer downloads", int64(MaxImageBytes))
		}
		path := filepath.Join(dir, f.Name)
		d, err := s.download(ctx, f.Name, path)
		if err != nil {
			return nil, err
		}
		if d.SHA256Hex() != f.SHA256 || d.Size != f.Size {
			return nil, fmt.Errorf("%s in the bucket (%d bytes, sha256 %s) is not the file the build recorded (%d bytes, sha256 %s)",
				f.Name, d.Size, d.SHA256Hex(), f.Size, f.SHA256)
		}
		arts = append(arts, sidecar.Artifact{Path: path, Digests: &d})
	}
	return arts, nil
}

// download copies an object to path, hashing it in the same pass.
func (s *signer) download(ctx context.Context, name, path string) (digest.Digests, error) {
	info, err := s.store.Stat(ctx, name)
	if err != nil {
		return digest.Digests{}, fmt.Errorf("%s: %w", name, err)
	}
	if info.Size > MaxImageBytes {
		return digest.Digests{}, fmt.Errorf("%s: %d bytes, more than the %d a signer downloads", name, info.Size, int64(MaxImageBytes))
	}
	r, err := s.store.Open(ctx, name)
	if err != nil {
		return digest.Digests{}, fmt.Errorf("%s: %w", name, err)
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return digest.Digests{}, err
	}
	defer f.Close()
	s.o.Log.Info("downloading and hashing", "file", s.store.URL(name), "bytes", info.Size)
	d, _, err := digest.Copy(f, io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return digest.Digests{}, fmt.Errorf("download %s: %w", name, err)
	}
	return d, f.Close()
}

func closureOf(rec *buildrecord.Record) []provenance.StorePath {
	out := make([]provenance.StorePath, 0, len(rec.Closure))
	for _, p := range rec.Closure {
		out = append(out, storePath(p))
	}
	return out
}

func storePath(p nixstore.PathInfo) provenance.StorePath {
	return provenance.StorePath{Path: p.Path, NarHash: p.NarHash, NarSize: p.NarSize, References: p.References, Deriver: p.Deriver}
}

// verify checks what was just written with the configured public key (or,
// when none is configured, the secret key's own), as the user will: a
// custom build, accepted because it is the build asked for. A complete
// status means the artifact passes `mage verify` with that build id.
func (s *signer) verify(ctx context.Context, main sidecar.Artifact, signed bool, buildID string) error {
	if !signed {
		s.o.Log.Warn("no SOURCEOS_SIGN_SECRET_KEY: the image stays unsigned; its provenance is written")
		return nil
	}
	pub, err := publicKey(s.o.Cfg)
	if err != nil {
		return err
	}
	if _, err := verify.Verify(ctx, verify.VerifyOptions{Artifact: main.Path, PublicKey: pub, Digests: main.Digests,
		ExpectBuildID: buildID}); err != nil {
		return fmt.Errorf("verify gate: %w", err)
	}
	return nil
}

// signingKey is the key custom builds are signed with: the custom builds'
// own (SOURCEOS_CUSTOM_SIGN_SECRET_KEY) when one is configured, so that the
// release key need never reach this machine, else the release key.
func signingKey(cfg *config.Config) (key, password config.Secret) {
	if cfg.CustomSignSecretKey.IsSet() {
		return cfg.CustomSignSecretKey, cfg.CustomSignPassword
	}
	return cfg.SignSecretKey, cfg.SignPassword
}

// publicKey is the public key of the signing key in use as configured
// (SOURCEOS_CUSTOM_SIGN_PUBKEY or SOURCEOS_SIGN_PUBKEY), or the key's own
// public half when none is configured (never a silent pass).
func publicKey(cfg *config.Config) (string, error) {
	if cfg.CustomSignSecretKey.IsSet() && cfg.CustomSignPubKey != "" {
		return cfg.CustomSignPubKey, nil
	}
	if !cfg.CustomSignSecretKey.IsSet() && cfg.SignPubKey != "" {
		return cfg.SignPubKey, nil
	}
	key, password := signingKey(cfg)
	k, err := signature.ParseSecretKey([]byte(key.Reveal()), password.Reveal())
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	defer k.Wipe()
	return k.Public().String(), nil
}

// upload writes the sidecars over anything the build machine may have put
// under their names, signatures last, and removes whatever it put under the
// name of a sidecar this signing does not write (a signature beside an
// image signed without a key, say).
func (s *signer) upload(ctx context.Context, name string, sidecars []string) error {
	written := map[string]bool{}
	for _, p := range sidecars {
		written[filepath.Base(p)] = true
	}
	for _, ext := range sidecar.SidecarExts {
		if !written[name+ext] {
			if err := s.store.Delete(ctx, name+ext); err != nil {
				return fmt.Errorf("remove %s: %w", name+ext, err)
			}
		}
	}
	sidecars = slices.Clone(sidecars)
	slices.SortStableFunc(sidecars, func(a, b string) int { return cmp.Compare(isSignature(a), isSignature(b)) })
	for _, p := range sidecars {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key := filepath.Base(p)
		if err := s.store.Put(ctx, key, bytes.NewReader(b), blob.PutOptions{ContentType: sidecar.ContentType(key)}); err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
		s.o.Log.Info("uploaded", "url", s.store.URL(key))
	}
	return nil
}

func isSignature(p string) int {
	if strings.HasSuffix(p, sidecar.ExtMinisig) || strings.HasSuffix(p, sidecar.ExtDSSE) {
		return 1
	}
	return 0
}

// finish writes complete or error (and the old backend's fields with
// them: WriteStatus). The status is rebuilt from this machine's
// configuration: of what the build machine wrote only the start time, a
// known lane name and a run id that is one are kept, the run id only when
// this machine runs in none.
func (s *signer) finish(ctx context.Context, url string, signErr error) error {
	cfg := s.o.Cfg
	st := gcpvm.Status{BuildID: cfg.BuildID, UID: cfg.BuildUID, Version: cfg.Version,
		Lane: knownLane(s.status.Lane), StartedAt: s.status.StartedAt, UpdatedAt: s.o.Now().UTC(),
		Run: cmp.Or(cfg.GitHubRunID, runID(s.status.Run))}
	if signErr != nil {
		st.State, st.Error = gcpvm.Failed, "signing failed: "+cfg.Redactor().String(signErr.Error())
	} else {
		st.State, st.ArtifactURL, st.Signed = gcpvm.Complete, url, s.status.Signed
	}
	return gcpvm.WriteStatus(ctx, s.store, st)
}

// knownLane is lane when it is one the build steps write, else "unknown".
func knownLane(lane string) string {
	switch lane {
	case gcpvm.LaneVM, gcpvm.LaneCI, gcpvm.LaneLocal:
		return lane
	}
	return "unknown"
}

// runID is id when it looks like a GitHub run id (digits), else "".
func runID(id string) string {
	if id == "" || len(id) > 20 || strings.Trim(id, "0123456789") != "" {
		return ""
	}
	return id
}
