package checks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// HostFactsFile is where host facts are declared, relative to the root.
const HostFactsFile = "hosts/facts.json"

// HostFacts is what must hold of every host, and what the
// module-level evaluation needs to load hosts the way the flake does.
type HostFacts struct {
	// Modules are repository modules the flake adds to every host beside
	// the host's own file (e.g. modules/sourceos.nix); the module-level
	// evaluation loads them with the host.
	Modules []string `json:"modules,omitempty"`
	// ModuleArgs are stand-ins for the extra module arguments the flake
	// passes (specialArgs), by argument name.
	ModuleArgs map[string]StandIn `json:"moduleArgs,omitempty"`
	// StubOptions stand in for options of modules that are not available
	// offline (a flake input's module), by dotted option path.
	StubOptions map[string]StubOption `json:"stubOptions,omitempty"`
	Hosts       map[string]HostEntry  `json:"hosts"`
}

// HostEntry is what must hold for one host, however it is written.
type HostEntry struct {
	// File is the host module, relative to the root.
	File string `json:"file"`
	// System is the host's Nix system, e.g. "x86_64-linux".
	System string `json:"system"`
	// Imports are repository modules the host must import, directly or
	// through the modules it imports.
	Imports []string `json:"imports"`
	Facts   []Fact   `json:"facts"`
	// Modules, ModuleArgs and StubOptions add to (and, by name, replace)
	// the top-level ones for this host.
	Modules     []string              `json:"modules,omitempty"`
	ModuleArgs  map[string]StandIn    `json:"moduleArgs,omitempty"`
	StubOptions map[string]StubOption `json:"stubOptions,omitempty"`
}

// StandIn is the value the module-level evaluation passes for an extra
// module argument: exactly one of its fields.
type StandIn struct {
	// Package is a stub package of this name (what a package fact sees).
	Package string `json:"package,omitempty"`
	// Value is a JSON value, passed as is.
	Value json.RawMessage `json:"value,omitempty"`
	// Attrs is an attribute set of stand-ins (e.g. self.packages.<system>.<name>).
	Attrs map[string]StandIn `json:"attrs,omitempty"`
	// Stub passes an argument that exists but fails the evaluation, with
	// its name, wherever its value is used.
	Stub bool `json:"stub,omitempty"`
}

// StubOption declares an option of a module the module-level evaluation
// cannot load: exactly one of Default and AttrsOf.
type StubOption struct {
	// Default is the option's value when no module defines it.
	Default json.RawMessage `json:"default,omitempty"`
	// AttrsOf makes the option an attribute set of entries (default {}),
	// each starting from these attributes unless a module defines them;
	// "{name}" in a string is replaced by the entry's name (as a
	// submodule's defaults may use its name).
	AttrsOf map[string]json.RawMessage `json:"attrsOf,omitempty"`
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

// LoadHostFacts reads and checks the host facts file.
func LoadHostFacts(root string) (*HostFacts, error) {
	b, err := os.ReadFile(filepath.Join(root, HostFactsFile))
	if err != nil {
		return nil, err
	}
	return ParseHostFacts(b)
}

// hostFactsDoc is the document as read: every entry is decoded on its
// own, so that an error names the entry it is in.
type hostFactsDoc struct {
	Modules     []string                   `json:"modules"`
	ModuleArgs  map[string]json.RawMessage `json:"moduleArgs"`
	StubOptions map[string]json.RawMessage `json:"stubOptions"`
	Hosts       map[string]json.RawMessage `json:"hosts"`
}

type hostDoc struct {
	File        string                     `json:"file"`
	System      string                     `json:"system"`
	Imports     []string                   `json:"imports"`
	Facts       []Fact                     `json:"facts"`
	Modules     []string                   `json:"modules"`
	ModuleArgs  map[string]json.RawMessage `json:"moduleArgs"`
	StubOptions map[string]json.RawMessage `json:"stubOptions"`
}

// ParseHostFacts decodes a host facts document strictly: unknown keys,
// empty paths, facts that expect both or neither kind, stand-ins and stub
// options that are not exactly one kind are errors naming their entry.
func ParseHostFacts(b []byte) (*HostFacts, error) {
	var doc hostFactsDoc
	if err := strictDecode(b, &doc, ""); err != nil {
		return nil, err
	}
	if len(doc.Hosts) == 0 {
		return nil, fmt.Errorf("no hosts declared")
	}
	c := &HostFacts{Hosts: map[string]HostEntry{}}
	var err error
	if c.Modules, err = checkModules(doc.Modules, "modules"); err != nil {
		return nil, err
	}
	if c.ModuleArgs, err = parseStandIns(doc.ModuleArgs, "moduleArgs"); err != nil {
		return nil, err
	}
	if c.StubOptions, err = parseStubOptions(doc.StubOptions, "stubOptions"); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(doc.Hosts) {
		hc, err := parseHost(doc.Hosts[name], "hosts."+name)
		if err != nil {
			return nil, err
		}
		c.Hosts[name] = hc
	}
	return c, nil
}

func parseHost(raw json.RawMessage, where string) (HostEntry, error) {
	var d hostDoc
	if err := strictDecode(raw, &d, where); err != nil {
		return HostEntry{}, err
	}
	hc := HostEntry{File: d.File, System: d.System, Imports: d.Imports, Facts: d.Facts}
	var err error
	if hc.Modules, err = checkModules(d.Modules, where+".modules"); err != nil {
		return hc, err
	}
	if hc.ModuleArgs, err = parseStandIns(d.ModuleArgs, where+".moduleArgs"); err != nil {
		return hc, err
	}
	if hc.StubOptions, err = parseStubOptions(d.StubOptions, where+".stubOptions"); err != nil {
		return hc, err
	}
	if err := hc.validate(); err != nil {
		return hc, fmt.Errorf("%s: %w", where, err)
	}
	return hc, nil
}

// HostNames returns the declared hosts, sorted.
func (c *HostFacts) HostNames() []string { return sortedKeys(c.Hosts) }

// HostSetup is what the module-level evaluation of one host loads: the
// top-level modules, stand-ins and stub options with the host's own.
type HostSetup struct {
	Modules     []string
	ModuleArgs  map[string]StandIn
	StubOptions map[string]StubOption
}

// Setup merges the top-level and the host's module setup; the host's
// stand-ins and stub options replace top-level ones of the same name.
func (c *HostFacts) Setup(hc HostEntry) HostSetup {
	s := HostSetup{ModuleArgs: map[string]StandIn{}, StubOptions: map[string]StubOption{}}
	for _, m := range append(slices.Clone(c.Modules), hc.Modules...) {
		if !slices.Contains(s.Modules, m) {
			s.Modules = append(s.Modules, m)
		}
	}
	maps.Copy(s.ModuleArgs, c.ModuleArgs)
	maps.Copy(s.ModuleArgs, hc.ModuleArgs)
	maps.Copy(s.StubOptions, c.StubOptions)
	maps.Copy(s.StubOptions, hc.StubOptions)
	return s
}

func (h HostEntry) validate() error {
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

// reservedArgs are the module arguments the evaluation itself provides.
var reservedArgs = []string{"lib", "pkgs", "config", "options", "modulesPath"}

var nixAttrName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

func parseStandIns(raw map[string]json.RawMessage, where string) (map[string]StandIn, error) {
	if raw == nil {
		return nil, nil
	}
	out := map[string]StandIn{}
	for _, name := range sortedKeys(raw) {
		w := where + "." + name
		if slices.Contains(reservedArgs, name) {
			return nil, fmt.Errorf("%s: %s is provided by the evaluation itself and cannot be replaced", w, name)
		}
		s, err := parseStandIn(raw[name], w)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

func parseStandIn(raw json.RawMessage, where string) (StandIn, error) {
	var d struct {
		Package *string                    `json:"package"`
		Value   json.RawMessage            `json:"value"`
		Attrs   map[string]json.RawMessage `json:"attrs"`
		Stub    *bool                      `json:"stub"`
	}
	if err := strictDecode(raw, &d, where); err != nil {
		return StandIn{}, err
	}
	kinds := 0
	for _, set := range []bool{d.Package != nil, d.Value != nil, d.Attrs != nil, d.Stub != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return StandIn{}, fmt.Errorf("%s: give exactly one of package, value, attrs, stub", where)
	}
	var s StandIn
	switch {
	case d.Package != nil:
		if !nixAttrName.MatchString(*d.Package) {
			return s, fmt.Errorf("%s: package %q is not a package attribute name", where, *d.Package)
		}
		s.Package = *d.Package
	case d.Value != nil:
		s.Value = d.Value
	case d.Attrs != nil:
		s.Attrs = map[string]StandIn{}
		for _, n := range sortedKeys(d.Attrs) {
			child, err := parseStandIn(d.Attrs[n], where+".attrs."+n)
			if err != nil {
				return s, err
			}
			s.Attrs[n] = child
		}
	default:
		if !*d.Stub {
			return s, fmt.Errorf("%s: stub must be true", where)
		}
		s.Stub = true
	}
	return s, nil
}

func parseStubOptions(raw map[string]json.RawMessage, where string) (map[string]StubOption, error) {
	if raw == nil {
		return nil, nil
	}
	out := map[string]StubOption{}
	for _, path := range sortedKeys(raw) {
		w := where + "." + path
		if _, err := SplitPath(path); err != nil {
			return nil, fmt.Errorf("%s: %w", w, err)
		}
		var o StubOption
		if err := strictDecode(raw[path], &o, w); err != nil {
			return nil, err
		}
		if (o.Default == nil) == (o.AttrsOf == nil) {
			return nil, fmt.Errorf("%s: give exactly one of default, attrsOf", w)
		}
		out[path] = o
	}
	return out, nil
}

// checkModules: repository modules are relative paths inside the root.
func checkModules(mods []string, where string) ([]string, error) {
	for i, m := range mods {
		if !filepath.IsLocal(m) || filepath.Clean(m) != m {
			return nil, fmt.Errorf("%s[%d]: %q is not a clean path inside the repository", where, i, m)
		}
	}
	return mods, nil
}

// strictDecode decodes one JSON value into v, refusing unknown keys and
// trailing data; errors are prefixed with where (the entry's name).
func strictDecode(b []byte, v any, where string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = fmt.Errorf("trailing data after the value")
	}
	if err == nil {
		return nil
	}
	msg := err.Error()
	if k, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		msg = "unknown key " + k
	}
	if where == "" {
		return fmt.Errorf("decode: %s", msg)
	}
	return fmt.Errorf("%s: %s", where, msg)
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
// in the given Nix sources, plus the packages the facts expect: the
// names the module-level evaluation's stub pkgs provides.
func PackageNames(c *HostFacts, sources ...[]byte) []string {
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
