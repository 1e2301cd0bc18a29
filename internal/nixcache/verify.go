package nixcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Problem is one defect of a cache.
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// Report is the result of an audit.
type Report struct {
	Narinfos int       `json:"narinfos"`
	NARs     int       `json:"nars"`
	Deep     bool      `json:"deep"`
	Problems []Problem `json:"problems"`
}

// VerifyError is returned when an audit found problems.
type VerifyError struct{ Problems int }

func (e *VerifyError) Error() string { return fmt.Sprintf("cache verify: %d problem(s)", e.Problems) }

// Verify audits the cache: every narinfo parses, carries a signature that
// verifies with the cache's public key, names an existing NAR of the stated
// FileSize, and every reference's narinfo exists (in the cache or, when
// Upstreams are set, upstream). With deep, each NAR is downloaded,
// decompressed and checked against FileHash, NarHash and NarSize. The
// report lists every problem; the error is a *VerifyError if any.
func Verify(ctx context.Context, o Options, deep bool) (Report, error) {
	o = o.withDefaults()
	pk, err := o.publicKey()
	if err != nil {
		return Report{}, err
	}
	store, err := o.open(ctx, nil)
	if err != nil {
		return Report{}, fmt.Errorf("cache verify: %w", err)
	}
	objects := map[string]int64{}
	err = store.List(ctx, "", func(i blob.Info) error { objects[i.Key] = i.Size; return nil })
	if err != nil {
		return Report{}, fmt.Errorf("cache verify: %w", err)
	}
	a := &auditor{o: o, store: store, pk: pk, deep: deep, objects: objects}
	if len(o.Upstreams) > 0 {
		a.ups = probeUpstreams(ctx, o.HTTPClient, o.Upstreams, o.UpstreamTimeout, o.Log)
	}
	return a.run(ctx)
}

type auditor struct {
	o       Options
	store   blob.Store
	pk      signature.PublicKey
	deep    bool
	objects map[string]int64
	ups     *upstreams
	mu      sync.Mutex
	rep     Report
}

func (a *auditor) run(ctx context.Context) (Report, error) {
	var keys []string
	for k := range a.objects {
		switch {
		case strings.HasSuffix(k, ".narinfo") && !strings.Contains(k, "/"):
			keys = append(keys, k)
		case strings.HasPrefix(k, "nar/"):
			a.rep.NARs++
		}
	}
	sort.Strings(keys)
	a.rep.Narinfos, a.rep.Deep = len(keys), a.deep
	if _, ok := a.objects["nix-cache-info"]; !ok {
		a.problem("nix-cache-info", "missing")
	}
	parallel(ctx, len(keys), max(8, a.o.Jobs), func(i int) {
		if err := a.check(ctx, keys[i]); err != nil {
			a.problem(keys[i], err.Error())
		}
	})
	sort.Slice(a.rep.Problems, func(i, j int) bool { return a.rep.Problems[i].String() < a.rep.Problems[j].String() })
	if err := ctx.Err(); err != nil {
		return a.rep, err
	}
	if n := len(a.rep.Problems); n > 0 {
		return a.rep, &VerifyError{Problems: n}
	}
	return a.rep, nil
}

func (a *auditor) problem(key, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rep.Problems = append(a.rep.Problems, Problem{Key: key, Message: msg})
}

// check audits one narinfo, reporting the first defect of each kind.
func (a *auditor) check(ctx context.Context, key string) error {
	ni, err := a.read(ctx, key)
	if err != nil {
		return err
	}
	if nixstore.HashPart(ni.StorePath)+".narinfo" != key {
		a.problem(key, "StorePath "+ni.StorePath+" does not match the object name")
	}
	if !verifies(ni, a.pk) {
		a.problem(key, "no signature verifies with "+a.pk.Name)
	}
	size, ok := a.objects[ni.URL]
	switch {
	case !ok:
		a.problem(key, "NAR "+ni.URL+" missing")
	case ni.FileSize != 0 && uint64(size) != ni.FileSize:
		a.problem(key, fmt.Sprintf("NAR %s has %d bytes, FileSize says %d", ni.URL, size, ni.FileSize))
	case a.deep:
		if err := a.checkNAR(ctx, ni); err != nil {
			a.problem(key, err.Error())
		}
	}
	for _, r := range ni.References {
		h := nixstore.HashPart(r)
		if _, ok := a.objects[h+".narinfo"]; !ok && !a.ups.has(ctx, h) {
			a.problem(key, "reference "+r+" has no narinfo")
		}
	}
	return nil
}

func (a *auditor) read(ctx context.Context, key string) (*narinfo.NarInfo, error) {
	rc, err := a.store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, err
	}
	return ParseNarInfo(b)
}

// ParseNarInfo parses and checks a narinfo: known fields only, valid store
// paths, a NarHash and NarSize.
func ParseNarInfo(b []byte) (*narinfo.NarInfo, error) {
	ni, err := narinfo.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("narinfo does not parse: %w", err)
	}
	if err := ni.Check(); err != nil {
		return nil, fmt.Errorf("narinfo: %w", err)
	}
	if ni.NarHash == nil || ni.NarSize == 0 || ni.URL == "" {
		return nil, errors.New("narinfo lacks URL, NarHash or NarSize")
	}
	if ni.NarHash.Algo() != nixhash.SHA256 {
		return nil, fmt.Errorf("narinfo: NarHash is %s, want sha256", ni.NarHash.Algo())
	}
	return ni, nil
}

func verifies(ni *narinfo.NarInfo, pk signature.PublicKey) bool {
	fp := fingerprint(ni)
	for _, s := range ni.Signatures {
		if pk.Verify(fp, s) {
			return true
		}
	}
	return false
}

// fingerprint is what Nix signs; references are sorted, as Nix sorts them.
func fingerprint(ni *narinfo.NarInfo) string {
	c := *ni
	c.References = append([]string(nil), ni.References...)
	sort.Strings(c.References)
	return c.Fingerprint()
}

// checkNAR downloads, decompresses and hashes one NAR.
func (a *auditor) checkNAR(ctx context.Context, ni *narinfo.NarInfo) error {
	c, err := codecFor(ni.Compression)
	if err != nil {
		return err
	}
	rc, err := a.store.Open(ctx, ni.URL)
	if err != nil {
		return err
	}
	defer rc.Close()
	fileHash, fileSize := sha256.New(), &counter{}
	dr, err := c.newReader(io.TeeReader(rc, io.MultiWriter(fileHash, fileSize)))
	if err != nil {
		return fmt.Errorf("NAR %s: %w", ni.URL, err)
	}
	defer dr.Close()
	narHash := sha256.New()
	n, err := io.Copy(narHash, dr)
	if err != nil {
		return fmt.Errorf("NAR %s does not decompress: %w", ni.URL, err)
	}
	if !bytes.Equal(narHash.Sum(nil), ni.NarHash.Digest()) || uint64(n) != ni.NarSize {
		return fmt.Errorf("NAR %s: content does not match NarHash/NarSize", ni.URL)
	}
	if ni.FileHash != nil && !bytes.Equal(fileHash.Sum(nil), ni.FileHash.Digest()) {
		return fmt.Errorf("NAR %s: FileHash mismatch", ni.URL)
	}
	return nil
}
