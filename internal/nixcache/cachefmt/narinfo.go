package cachefmt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Content types of cache objects. NARs carry no Content-Encoding: the
// narinfo's Compression tells the client how to decode them.
const (
	NarinfoType   = "text/x-nix-narinfo"
	NarType       = "application/x-nix-nar"
	CacheInfoType = "text/x-nix-cache-info"
)

// CacheInfo is the nix-cache-info written at the cache root.
const CacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"

// NarFile describes a stored, compressed NAR as a narinfo names it.
type NarFile struct {
	URL      string
	FileHash []byte // sha256 of the compressed file
	FileSize uint64
}

// BuildNarInfo assembles and signs the narinfo of pi whose NAR, compressed
// with compression, is f: the path's own signatures are kept and ours is
// added, sorted as Nix sorts them.
func BuildNarInfo(pi nixstore.PathInfo, compression string, f NarFile, sk signature.SecretKey) (*narinfo.NarInfo, error) {
	narHash, err := nixhash.ParseAny(pi.NarHash, nil)
	if err != nil {
		return nil, fmt.Errorf("NarHash: %w", err)
	}
	ni := &narinfo.NarInfo{
		StorePath:   pi.Path,
		URL:         f.URL,
		Compression: compression,
		FileHash:    nixhash.MustNewHashWithEncoding(nixhash.SHA256, f.FileHash, nixhash.NixBase32, true),
		FileSize:    f.FileSize,
		NarHash:     nixhash.MustNewHashWithEncoding(nixhash.SHA256, narHash.Digest(), nixhash.NixBase32, true),
		NarSize:     pi.NarSize,
		CA:          pi.CA,
	}
	for _, r := range pi.References {
		ni.References = append(ni.References, nixstore.BaseName(r))
	}
	sort.Strings(ni.References)
	if pi.Deriver != "" {
		ni.Deriver = nixstore.BaseName(pi.Deriver)
	}
	ours, err := sk.Sign(rand.Reader, ni.Fingerprint())
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	ni.Signatures = MergeSignatures(pi.Signatures, ours)
	return ni, nil
}

// ParseFields reads the "Key: value" lines of a narinfo into go-nix's
// NarInfo, with the same rules as go-nix's narinfo.Parse (known keys only,
// one ": " per line, Compression bzip2 when absent, Deriver
// "unknown-deriver" meaning none). It exists because that function
// allocates a 1 MiB line buffer per call, which a push that checks every
// narinfo of a closure on each run cannot afford.
func ParseFields(b []byte) (*narinfo.NarInfo, error) {
	ni := &narinfo.NarInfo{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok || strings.Contains(v, ": ") {
			return nil, fmt.Errorf("line %q is not one \"Key: value\"", line)
		}
		if err := setField(ni, k, v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if ni.Compression == "" {
		ni.Compression = "bzip2"
	}
	return ni, nil
}

func setField(ni *narinfo.NarInfo, k, v string) error {
	var err error
	switch k {
	case "StorePath":
		ni.StorePath = v
	case "URL":
		ni.URL = v
	case "Compression":
		ni.Compression = v
	case "FileHash":
		ni.FileHash, err = nixhash.ParseAny(v, nil)
	case "FileSize":
		ni.FileSize, err = strconv.ParseUint(v, 10, 64)
	case "NarHash":
		ni.NarHash, err = nixhash.ParseAny(v, nil)
	case "NarSize":
		ni.NarSize, err = strconv.ParseUint(v, 10, 64)
	case "References":
		if v != "" {
			ni.References = append(ni.References, strings.Split(v, " ")...)
		}
	case "Deriver":
		if v != "unknown-deriver" {
			ni.Deriver = v
		}
	case "System":
		ni.System = v
	case "Sig":
		var sig signature.Signature
		if sig, err = signature.ParseSignature(v); err == nil {
			ni.Signatures = append(ni.Signatures, sig)
		}
	case "CA":
		ni.CA = v
	default:
		err = errors.New("unknown key")
	}
	return err
}

// MergeSignatures keeps the parseable existing signatures, adds ours
// unless already present, and sorts them by their text.
func MergeSignatures(existing []string, ours signature.Signature) []signature.Signature {
	seen := map[string]bool{ours.String(): true}
	out := []signature.Signature{ours}
	for _, s := range existing {
		sig, err := signature.ParseSignature(s)
		if err != nil || seen[sig.String()] {
			continue
		}
		seen[sig.String()] = true
		out = append(out, sig)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// MaxNarinfoSize bounds the bytes read of one narinfo.
const MaxNarinfoSize = 1 << 20

// ErrInvalidNarinfo marks a narinfo that was read but does not parse, as
// opposed to one that could not be read (the store's error): a reader
// may take the first for "not ours", never the second.
var ErrInvalidNarinfo = errors.New("invalid narinfo")

// invalidNarinfo is a parse error that is also ErrInvalidNarinfo.
type invalidNarinfo struct{ err error }

func (e invalidNarinfo) Error() string        { return e.err.Error() }
func (e invalidNarinfo) Unwrap() error        { return e.err }
func (e invalidNarinfo) Is(target error) bool { return target == ErrInvalidNarinfo }

// ReadNarinfo reads and parses the narinfo object key (at most
// MaxNarinfoSize bytes), returning the bytes read too. A narinfo that
// does not parse is ErrInvalidNarinfo; any other error is the store's.
func ReadNarinfo(ctx context.Context, s blob.Store, key string) ([]byte, *narinfo.NarInfo, error) {
	rc, err := s.Open(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxNarinfoSize))
	if err != nil {
		return nil, nil, err
	}
	ni, err := ParseNarInfo(b)
	if err != nil {
		return b, nil, invalidNarinfo{err}
	}
	return b, ni, nil
}

// Unreadable says whether err, from ReadNarinfo or a look-up, is a
// failure of the store (the object may well be there) rather than an
// object that is gone or is not a narinfo.
func Unreadable(err error) bool {
	return err != nil && !errors.Is(err, ErrInvalidNarinfo) && !errors.Is(err, blob.ErrNotFound)
}

// ParseNarInfo parses and checks a narinfo: known fields only, valid store
// paths, a NarHash and NarSize.
func ParseNarInfo(b []byte) (*narinfo.NarInfo, error) {
	ni, err := ParseFields(b)
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

// Verifies says whether a signature of ni verifies with pk.
func Verifies(ni *narinfo.NarInfo, pk signature.PublicKey) bool {
	fp := Fingerprint(ni)
	for _, s := range ni.Signatures {
		if pk.Verify(fp, s) {
			return true
		}
	}
	return false
}

// Fingerprint is what Nix signs; references are sorted, as Nix sorts them.
func Fingerprint(ni *narinfo.NarInfo) string {
	c := *ni
	c.References = append([]string(nil), ni.References...)
	sort.Strings(c.References)
	return c.Fingerprint()
}

// RefHashes is the hash parts of ni's references.
func RefHashes(ni *narinfo.NarInfo) []string {
	out := make([]string, 0, len(ni.References))
	for _, r := range ni.References {
		out = append(out, nixstore.HashPart(r))
	}
	return out
}
