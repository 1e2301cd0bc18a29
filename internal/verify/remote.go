package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/sidecar"
)

// Remote errors.
var (
	// ErrURL is wrapped by the error for a URL `mage verify` does not
	// fetch from.
	ErrURL = errors.New("unsupported artifact URL")
	// ErrRedirect is wrapped by the error for a redirect the first URL's
	// rule does not allow (see hostRule): to another scheme, to a host
	// that rule refuses, with credentials, or past the tenth.
	ErrRedirect = errors.New("redirect refused")
	// errNotFound means the object is not there (HTTP 404, no such GCS
	// object): a sidecar that is absent, which Verify then reports.
	errNotFound = fs.ErrNotExist
)

// IsURL reports whether artifact names a remote artifact (https://,
// gs://, or http:// to this machine) rather than a local file.
func IsURL(artifact string) bool {
	for _, p := range []string{"https://", "gs://", "http://"} {
		if strings.HasPrefix(artifact, p) {
			return true
		}
	}
	return false
}

// remote is where an artifact and its sidecars are fetched from: objects
// beside each other, named by file name.
type remote interface {
	// open returns the object name beside the artifact and its size (-1
	// when unknown); errNotFound when there is none.
	open(ctx context.Context, name string) (io.ReadCloser, int64, error)
	close() error
}

// openRemote parses an artifact URL into its source and file name.
// Accepted: https://host/path/name, gs://bucket/path/name, and
// http://host/path/name when host is a loopback address (a local mirror
// or the GCS emulator); never credentials in the URL, a query or a
// fragment (every sidecar is the artifact's URL plus a suffix), nor a
// name that is not a plain file name (see checkFileName).
func openRemote(raw string, gcs ObjectReader) (remote, string, error) {
	u, name, err := parseArtifactURL(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrURL, err)
	}
	if u.Scheme == "gs" {
		if gcs == nil {
			return nil, "", fmt.Errorf("%w: gs:// URLs need a GCS reader here", ErrURL)
		}
		return &gcsRemote{r: gcs, bucket: u.Host, prefix: strings.Trim(path.Dir(u.Path), "/")}, name, nil
	}
	rule, err := ruleFor(u)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrURL, err)
	}
	dir := *u
	dir.Path, dir.RawPath = path.Dir(u.Path), ""
	return &httpRemote{dir: &dir, client: rule.client()}, name, nil
}

// parseArtifactURL parses raw and returns its file name, refusing what
// openRemote does not fetch from.
func parseArtifactURL(raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", err
	}
	name := path.Base(u.Path)
	switch {
	case u.User != nil:
		return nil, "", fmt.Errorf("%s carries credentials", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, "", fmt.Errorf("%s has a query or fragment", printable(raw))
	case u.Host == "" || strings.HasSuffix(u.Path, "/"):
		return nil, "", fmt.Errorf("%s names no file", printable(raw))
	}
	if err := checkFileName(name); err != nil {
		return nil, "", fmt.Errorf("%s: %w", printable(raw), err)
	}
	return u, name, nil
}

// httpRemote fetches objects by URL with no credentials of any kind: the
// client sets no Authorization header and keeps no cookies. Every
// redirect and every address dialled is held to the first URL's rule
// (see hostRule).
type httpRemote struct {
	dir    *url.URL
	client *http.Client
}

func (h *httpRemote) open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	u := h.dir.JoinPath(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch %s: %w", name, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %w", u.Redacted(), errNotFound)
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("fetch %s: %s", u.Redacted(), resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}

func (h *httpRemote) close() error { h.client.CloseIdleConnections(); return nil }

// ObjectReader reads GCS objects (see internal/verify/gcsobject): Open
// returns an error wrapping fs.ErrNotExist for a missing object.
type ObjectReader interface {
	Open(ctx context.Context, bucket, object string) (io.ReadCloser, int64, error)
}

// gcsRemote reads the objects beside a gs:// artifact.
type gcsRemote struct {
	r              ObjectReader
	bucket, prefix string
}

func (g *gcsRemote) open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	obj := name
	if g.prefix != "" {
		obj = g.prefix + "/" + name
	}
	return g.r.Open(ctx, g.bucket, obj)
}

func (g *gcsRemote) close() error { return nil }

// fetchTo copies the object name, at most limit bytes, to a new file at
// dst, computing set on the way (nothing when set is 0), and reports
// progress to p when it is not nil. A larger object is refused, before
// reading when its size is announced; one that comes too slowly is cut
// (see Limits).
func fetchTo(ctx context.Context, src limited, name, dst string, limit int64, set digest.Set, p io.Writer) (digest.Digests, error) {
	body, size, err := src.open(ctx, name)
	if err != nil {
		return digest.Digests{}, err
	}
	defer body.Close()
	if size > limit {
		return digest.Digests{}, &sidecar.TooLargeError{Path: name, Size: size, Limit: limit}
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return digest.Digests{}, err
	}
	var r io.Reader = io.LimitReader(body, limit+1)
	if p != nil {
		pr := newProgress(r, p, name, size)
		defer pr.finish()
		r = pr
	}
	d, n, err := digest.CopySet(f, r, set)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return digest.Digests{}, fmt.Errorf("fetch %s: %w", name, err)
	case n > limit:
		return digest.Digests{}, &sidecar.TooLargeError{Path: name, Size: n, Limit: limit}
	case size >= 0 && n != size:
		return digest.Digests{}, fmt.Errorf("fetch %s: got %d bytes of %d", name, n, size)
	}
	return d, nil
}

// progress prints how far a download has come on a terminal: one line,
// rewritten at most four times a second.
type progress struct {
	r           io.Reader
	w           io.Writer
	name        string
	total, done int64
	last        time.Time
}

func newProgress(r io.Reader, w io.Writer, name string, total int64) *progress {
	return &progress{r: r, w: w, name: printable(name), total: total}
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= 250*time.Millisecond {
		p.last = now
		p.print()
	}
	return n, err
}

func (p *progress) print() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s: %d of %d MiB (%d%%)", p.name, p.done>>20, p.total>>20, 100*p.done/p.total)
		return
	}
	fmt.Fprintf(p.w, "\r%s: %d MiB", p.name, p.done>>20)
}

func (p *progress) finish() {
	p.print()
	fmt.Fprintln(p.w)
}

// URLOptions bound what VerifyURL fetches.
type URLOptions struct {
	// KeepDir receives the artifact and its sidecars when they verify
	// (files of the same name are replaced); nothing is kept otherwise.
	KeepDir string
	// MaxArtifactSize bounds the artifact (sidecar.MaxArtifactSize when
	// 0); sidecars are bounded by sidecar.Limit.
	MaxArtifactSize int64
	// Progress, when set, receives a progress line while the artifact
	// downloads (a terminal).
	Progress io.Writer
	// GCS reads gs:// URLs (gcsobject.New()); nil refuses them.
	GCS ObjectReader
	// Limits bound how long a server may take (zero fields: defaults).
	Limits Limits
}

// VerifyURL is Verify for an artifact at a URL (see IsURL): the sidecars
// are fetched first within their limits, then the artifact, hashed while
// it downloads (it is read once). Both land in a temporary directory
// inside KeepDir; when every check passes they are moved into KeepDir
// and Report.Kept says where, otherwise the directory is removed. The
// outcome and exit codes are Verify's; a fetch that fails, or that a
// limit of uo.Limits cuts short (a *TimeoutError), is "could not verify".
func VerifyURL(ctx context.Context, opts VerifyOptions, uo URLOptions) (*Report, error) {
	rep := &Report{Artifact: opts.Artifact, Checks: []Check{}}
	cannot := func(err error) (*Report, error) {
		rep.Error = err.Error()
		return rep, &CannotVerifyError{Err: err}
	}
	if uo.MaxArtifactSize == 0 {
		uo.MaxArtifactSize = sidecar.MaxArtifactSize
	}
	uo.Limits = uo.Limits.withDefaults()
	ctx, cancel := uo.Limits.withDeadline(ctx)
	defer cancel()
	origin, name, err := openRemote(opts.Artifact, uo.GCS)
	if err != nil {
		return cannot(err)
	}
	defer origin.close()
	src := limited{src: origin, limits: uo.Limits}
	tmp, err := downloadDir(uo.KeepDir, name)
	if err != nil {
		return cannot(err)
	}
	defer os.RemoveAll(tmp)
	fetched, err := fetchSidecars(ctx, src, name, tmp)
	if err != nil {
		return cannot(err)
	}
	local := opts
	local.Artifact = filepath.Join(tmp, name)
	local.Digests = nil
	local.SignedOnly = true
	local.Hash = func(ctx context.Context, set digest.Set, signedSHA256 string) (digest.Digests, error) {
		d, err := fetchTo(ctx, src, name, local.Artifact, uo.MaxArtifactSize, set, uo.Progress)
		// The files a manifest lists are fetched only for the manifest
		// the signed statement names.
		if err == nil && name == sidecar.ManifestName && d.SHA256Hex() == signedSHA256 {
			var more []string
			more, err = fetchNetbootSet(ctx, src, tmp, uo.MaxArtifactSize)
			fetched = append(fetched, more...)
		}
		return d, err
	}
	rep, err = Verify(ctx, local)
	rep.Artifact = opts.Artifact
	if err != nil {
		return rep, err
	}
	if rep.Kept, err = keep(tmp, uo.KeepDir, name, append(fetched, name)); err != nil {
		return cannot(err)
	}
	return rep, nil
}

// downloadDir makes the directory inside keepDir that a download of name
// lands in, first removing those interrupted runs left.
func downloadDir(keepDir, name string) (string, error) {
	if err := os.MkdirAll(keepDir, 0o755); err != nil {
		return "", err
	}
	sweepStale(keepDir)
	return os.MkdirTemp(keepDir, ".verify-"+name+"-*")
}

// staleAge is how long a .verify-* directory must have gone unwritten
// before a later run removes it: an interrupted verify left it.
const staleAge = 10 * time.Minute

// sweepStale removes the download directories that interrupted runs left
// in dir.
func sweepStale(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ".verify-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAge {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// fetchSidecars fetches every sidecar of name that is there into dir and
// returns the file names fetched.
func fetchSidecars(ctx context.Context, src limited, name, dir string) ([]string, error) {
	var got []string
	for _, ext := range sidecar.SidecarExts {
		_, err := fetchTo(ctx, src, name+ext, filepath.Join(dir, name+ext), sidecar.Limit(ext), 0, nil)
		switch {
		case errors.Is(err, errNotFound):
		case err != nil:
			return nil, err
		default:
			got = append(got, name+ext)
		}
	}
	return got, nil
}

// maxNetbootFiles bounds the files a netboot manifest may have fetched (a
// set is a kernel, an initrd and an iPXE script).
const maxNetbootFiles = 16

// fetchNetbootSet fetches the files a netboot manifest in dir lists (file
// names beside it, see sidecar.ParseManifest), so the netboot check finds
// them as it would locally.
func fetchNetbootSet(ctx context.Context, src limited, dir string, limit int64) ([]string, error) {
	raw, err := sidecar.ReadLimited(filepath.Join(dir, sidecar.ManifestName), sidecar.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := sidecar.ParseManifest(raw)
	if err != nil {
		return nil, nil // the netboot check reports it
	}
	if len(m.Files) > maxNetbootFiles {
		return nil, fmt.Errorf("%s lists %d files, a netboot set has at most %d", sidecar.ManifestName, len(m.Files), maxNetbootFiles)
	}
	var got []string
	var total int64
	for _, f := range m.Files {
		if err := checkFileName(f.File); err != nil {
			return nil, fmt.Errorf("%s: %w", sidecar.ManifestName, err)
		}
		if total += f.Size; f.Size > limit || total > limit {
			return nil, &sidecar.TooLargeError{Path: f.File, Size: total, Limit: limit}
		}
		_, err := fetchTo(ctx, src, f.File, filepath.Join(dir, f.File), f.Size, 0, nil)
		switch {
		case errors.Is(err, errNotFound):
		case err != nil:
			return nil, err
		default:
			got = append(got, f.File)
		}
	}
	return got, nil
}

// keep moves the verified files from tmp into dir, replacing files of the
// same name, and removes sidecars of name in dir that were not fetched
// (an older release's would not match). It returns the artifact's path.
func keep(tmp, dir, name string, files []string) (string, error) {
	for _, ext := range sidecar.SidecarExts {
		if !contains(files, name+ext) {
			if err := os.Remove(filepath.Join(dir, name+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(tmp, f), filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("keep %s: %w", f, err)
		}
	}
	return filepath.Join(dir, name), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
