package nixstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixhash"
)

// rawInfo is one entry of `nix path-info --json` in any Nix version.
type rawInfo struct {
	Path       string          `json:"path"`
	Valid      *bool           `json:"valid"`
	NarHash    json.RawMessage `json:"narHash"`
	NarSize    *uint64         `json:"narSize"`
	References []string        `json:"references"`
	Deriver    *string         `json:"deriver"`
	Signatures []string        `json:"signatures"`
	CA         json.RawMessage `json:"ca"`
}

// ParsePathInfo parses the output of `nix path-info --json`: an array of
// objects carrying "path" (Nix ≤ 2.18) or an object keyed by store path
// (later releases, where unknown paths map to null). Hashes may be
// "sha256:<nix32>", "sha256:<hex>", SRI "sha256-<base64>" or an object
// {"algorithm","format","hash"}; references and derivers may be full paths
// or base names. The result is sorted by path.
func ParsePathInfo(data []byte) ([]PathInfo, error) {
	raws, err := decodeShape(data)
	if err != nil {
		return nil, err
	}
	out := make([]PathInfo, 0, len(raws))
	for _, r := range raws {
		pi, err := r.normalise()
		if err != nil {
			return nil, fmt.Errorf("nix path-info --json: %w", err)
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func decodeShape(data []byte) ([]rawInfo, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("nix path-info --json: empty output")
	}
	switch trimmed[0] {
	case '[':
		var arr []rawInfo
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return nil, fmt.Errorf("nix path-info --json: %w", err)
		}
		return arr, nil
	case '{':
		var obj map[string]*rawInfo
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return nil, fmt.Errorf("nix path-info --json: %w", err)
		}
		arr := make([]rawInfo, 0, len(obj))
		for p, r := range obj {
			if r == nil {
				return nil, fmt.Errorf("nix path-info --json: %s is not a valid path in the store", p)
			}
			r.Path = p
			arr = append(arr, *r)
		}
		return arr, nil
	}
	return nil, fmt.Errorf("nix path-info --json: unexpected output starting with %q", trimmed[:1])
}

func (r rawInfo) normalise() (PathInfo, error) {
	if err := ValidatePath(r.Path); err != nil {
		return PathInfo{}, err
	}
	if r.Valid != nil && !*r.Valid {
		return PathInfo{}, fmt.Errorf("%s is not a valid path in the store", r.Path)
	}
	if r.NarSize == nil {
		return PathInfo{}, fmt.Errorf("%s: narSize missing", r.Path)
	}
	h, err := parseHash(r.NarHash)
	if err != nil {
		return PathInfo{}, fmt.Errorf("%s: narHash: %w", r.Path, err)
	}
	refs, err := fullPaths(r.References)
	if err != nil {
		return PathInfo{}, fmt.Errorf("%s: references: %w", r.Path, err)
	}
	pi := PathInfo{Path: r.Path, NarHash: h, NarSize: *r.NarSize, References: refs,
		Signatures: append([]string(nil), r.Signatures...)}
	if r.Deriver != nil && *r.Deriver != "" {
		d, err := fullPath(*r.Deriver)
		if err != nil {
			return PathInfo{}, fmt.Errorf("%s: deriver: %w", r.Path, err)
		}
		pi.Deriver = d
	}
	pi.CA = parseCA(r.CA)
	return pi, nil
}

// NormaliseHash turns a SHA-256 in any encoding Nix prints into
// "sha256:<nix32>".
func NormaliseHash(s string) (string, error) {
	algo := nixhash.SHA256
	h, err := nixhash.ParseAny(s, &algo)
	if err != nil {
		return "", err
	}
	if h.Algo() != nixhash.SHA256 {
		return "", fmt.Errorf("want a sha256 hash, got %s", h.Algo())
	}
	return h.Format(nixhash.NixBase32, true), nil
}

func parseHash(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New("missing")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return NormaliseHash(s)
	}
	var obj struct{ Algorithm, Format, Hash string }
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("neither a string nor a hash object: %s", raw)
	}
	if obj.Algorithm != "sha256" {
		return "", fmt.Errorf("want a sha256 hash, got %q", obj.Algorithm)
	}
	if obj.Format == "base64" && !strings.HasSuffix(obj.Hash, "=") && len(obj.Hash) == 43 {
		obj.Hash += "="
	}
	return NormaliseHash("sha256-" + obj.Hash)
}

// parseCA keeps the textual content address; other shapes are dropped
// (the CA field is informational and not part of the signed fingerprint).
func parseCA(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

func fullPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		p = StoreDir + "/" + p
	}
	return p, ValidatePath(p)
}

func fullPaths(ps []string) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		fp, err := fullPath(p)
		if err != nil {
			return nil, err
		}
		out = append(out, fp)
	}
	sort.Strings(out)
	return out, nil
}
