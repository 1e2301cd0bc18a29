package nixcache

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Content types of cache objects. NARs carry no Content-Encoding: the
// narinfo's Compression tells the client how to decode them.
const (
	narinfoType   = "text/x-nix-narinfo"
	narType       = "application/x-nix-nar"
	cacheInfoType = "text/x-nix-cache-info"
)

// CacheInfo is the nix-cache-info written at the cache root.
const CacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"

// narinfoKey is the object key of a path's narinfo.
func narinfoKey(storePath string) string { return nixstore.HashPart(storePath) + ".narinfo" }

// narKey is the object key of a NAR, named by the NarHash (known before
// compressing, so the upload can stream to its final name).
func narKey(narHash string, c codec) (string, error) {
	h, err := nixhash.ParseAny(narHash, nil)
	if err != nil {
		return "", fmt.Errorf("NarHash %q: %w", narHash, err)
	}
	return "nar/" + h.Format(nixhash.NixBase32, false) + c.ext, nil
}

// fileKey is the object key of a NAR named by the hash of the compressed
// file, as nix copy names them, with an optional suffix: where a push
// stores its NAR when the NarHash name holds other bytes.
func fileKey(fileHash []byte, c codec, suffix string) string {
	h := nixhash.MustNewHashWithEncoding(nixhash.SHA256, fileHash, nixhash.NixBase32, false)
	return "nar/" + h.String() + suffix + c.ext
}

// stored describes an uploaded NAR.
type stored struct {
	URL      string
	FileHash []byte // sha256 of the compressed file
	FileSize uint64
	MD5      []byte // md5 of the compressed file, for push proofs
	// existing: the NAR was already stored (by another push), not
	// written by this one.
	existing bool
}

func (s stored) ref() narRef { return narRef{Key: s.URL, Size: int64(s.FileSize), MD5: s.MD5} }

// buildNarInfo assembles and signs the narinfo of pi: the path's own
// signatures are kept and ours is added, sorted as Nix sorts them.
func buildNarInfo(pi nixstore.PathInfo, c codec, s stored, sk signature.SecretKey) (*narinfo.NarInfo, error) {
	narHash, err := nixhash.ParseAny(pi.NarHash, nil)
	if err != nil {
		return nil, fmt.Errorf("NarHash: %w", err)
	}
	ni := &narinfo.NarInfo{
		StorePath:   pi.Path,
		URL:         s.URL,
		Compression: c.name,
		FileHash:    nixhash.MustNewHashWithEncoding(nixhash.SHA256, s.FileHash, nixhash.NixBase32, true),
		FileSize:    s.FileSize,
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
	ni.Signatures = mergeSignatures(pi.Signatures, ours)
	return ni, nil
}

// parseFields reads the "Key: value" lines of a narinfo into go-nix's
// NarInfo, with the same rules as go-nix's narinfo.Parse (known keys only,
// one ": " per line, Compression bzip2 when absent, Deriver
// "unknown-deriver" meaning none). It exists because that function
// allocates a 1 MiB line buffer per call, which a push that checks every
// narinfo of a closure on each run cannot afford.
func parseFields(b []byte) (*narinfo.NarInfo, error) {
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

// mergeSignatures keeps the parseable existing signatures, adds ours
// unless already present, and sorts them by their text.
func mergeSignatures(existing []string, ours signature.Signature) []signature.Signature {
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
