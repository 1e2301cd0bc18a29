package checks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ContractsFile is where host contracts are declared, relative to the root.
const ContractsFile = "hosts/contracts.json"

// Contracts is the declared contract of every host.
type Contracts struct {
	Hosts map[string]HostContract `json:"hosts"`
}

// HostContract is what must hold for one host, however it is written.
type HostContract struct {
	// File is the host module, relative to the root.
	File string `json:"file"`
	// System is the host's Nix system, e.g. "x86_64-linux".
	System string `json:"system"`
	// Imports are repository modules the host must import, directly or
	// through the modules it imports.
	Imports []string `json:"imports"`
	Facts   []Fact   `json:"facts"`
}

// Fact is one option value a host must evaluate to.
type Fact struct {
	// Path is the option path, dotted; quote a segment that holds dots:
	// fileSystems."/".device.
	Path string `json:"path"`
	// Equals is the expected value as JSON.
	Equals json.RawMessage `json:"equals,omitempty"`
	// Package is the expected package's name (for package options).
	Package string `json:"package,omitempty"`
}

// Expected is the fact's expected value, as reported.
func (f Fact) Expected() string {
	if f.Package != "" {
		return "package " + f.Package
	}
	return compactJSON(f.Equals)
}

// LoadContracts reads and checks the contracts file.
func LoadContracts(root string) (*Contracts, error) {
	b, err := os.ReadFile(filepath.Join(root, ContractsFile))
	if err != nil {
		return nil, err
	}
	return ParseContracts(b)
}

// ParseContracts decodes a contracts document strictly: unknown fields,
// empty paths and facts that expect both or neither kind are errors.
func ParseContracts(b []byte) (*Contracts, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Contracts
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(c.Hosts) == 0 {
		return nil, fmt.Errorf("no hosts declared")
	}
	for _, name := range c.HostNames() {
		if err := c.Hosts[name].validate(); err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
	}
	return &c, nil
}

// HostNames returns the declared hosts, sorted.
func (c *Contracts) HostNames() []string {
	names := make([]string, 0, len(c.Hosts))
	for n := range c.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (h HostContract) validate() error {
	if h.File == "" {
		return fmt.Errorf("file is empty")
	}
	for i, f := range h.Facts {
		if _, err := SplitPath(f.Path); err != nil {
			return fmt.Errorf("facts[%d]: %w", i, err)
		}
		if (len(f.Equals) == 0) == (f.Package == "") {
			return fmt.Errorf("facts[%d] (%s): give exactly one of equals, package", i, f.Path)
		}
	}
	return nil
}

// SplitPath splits a dotted option path into its attribute names.
func SplitPath(p string) ([]string, error) {
	var out []string
	for rest := p; ; {
		var seg string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("path %q: unterminated quote", p)
			}
			seg, rest = rest[1:end+1], rest[end+2:]
		} else {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				i = len(rest)
			}
			seg, rest = rest[:i], rest[i:]
			if seg == "" {
				return nil, fmt.Errorf("path %q: empty attribute name", p)
			}
		}
		out = append(out, seg)
		if rest == "" {
			return out, nil
		}
		if rest[0] != '.' || len(rest) == 1 {
			return nil, fmt.Errorf("path %q: expected '.' between attribute names", p)
		}
		rest = rest[1:]
	}
}

var pkgsRef = regexp.MustCompile(`\bpkgs\.([A-Za-z_][A-Za-z0-9_'-]*)`)

// PackageNames returns the package attribute names referenced as pkgs.NAME
// in the given Nix sources, plus the contracts' expected packages: the
// names the module-level evaluation's stub pkgs provides.
func PackageNames(c *Contracts, sources ...[]byte) []string {
	set := map[string]bool{}
	for _, h := range c.Hosts {
		for _, f := range h.Facts {
			if f.Package != "" {
				set[f.Package] = true
			}
		}
	}
	for _, src := range sources {
		for _, m := range pkgsRef.FindAllSubmatch(src, -1) {
			set[string(m[1])] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
