// Package catalog holds what a SourceOS flake builds, declared once in the
// flake's catalog.json: its editions (the NixOS module each is, the OSImage
// host profile, default host name, capabilities) and its artifacts (kind,
// flake attribute per system, file name, which editions, architectures and
// channels). Every consumer derives from it: the build steps, custom build
// validation, the signer's names, provenance, the OSImage document, the
// channel manifest and workflow checks, the docs tables, and the flake
// itself (flake.nix reads the same file). It also holds the small facts
// around it that many packages need: flake references, attribute paths,
// artifact names and flake.lock reading, so that none of them imports the
// build pipeline for a helper.
package catalog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/socioprophet/sourceos/internal/strictjson"
	"github.com/socioprophet/sourceos/schemas"
)

// FileName is the catalog's file name at the root of a flake.
const FileName = "catalog.json"

// MaxBytes bounds a catalog file.
const MaxBytes = 1 << 20

// Kind is what an artifact is: the build copies, signs and describes each
// kind its own way.
type Kind string

// The kinds of artifacts.
const (
	ISO     Kind = "iso"     // an installer image: iso/*.iso in its output
	Netboot Kind = "netboot" // kernel, initrd and iPXE script side by side
	QCOW2   Kind = "qcow2"   // a preinstalled disk image: *.qcow2 in its output
	GCE     Kind = "gce"     // a Google Compute Engine image: *.raw.tar.gz in its output
)

// DefaultInstaller is the installer profile of an edition that names none.
const DefaultInstaller = "installer/cd-dvd/installation-cd-minimal.nix"

// Kinds lists every kind, in the order docs show them.
var Kinds = []Kind{ISO, Netboot, QCOW2, GCE}

// Arches and Channels are the values a catalog may use.
var (
	Arches   = []string{"x86_64", "aarch64"}
	Channels = []string{"stable", "candidate", "dev"}
)

// Catalog is a parsed catalog.json.
type Catalog struct {
	// Editions and Artifacts are sorted by name.
	Editions  []*Edition
	Artifacts []*Artifact
	// Path is the file it was read from ("" when parsed from bytes).
	Path string
}

// Edition is one edition of the OS.
type Edition struct {
	Name string `json:"-"`
	// Description is one line for docs and `mage -l`-style listings.
	Description string `json:"description"`
	// Module is the flake's nixosModules attribute that is the edition.
	Module string `json:"module"`
	// HostProfile is the OSImage host profile of the edition's images.
	HostProfile string `json:"hostProfile"`
	// Hostname is the default host name of the edition's images.
	Hostname string `json:"hostname"`
	// Capabilities are the OSImage substrate capabilities of its images.
	Capabilities []string `json:"capabilities"`
	// Installer is the nixpkgs module (path under nixos/modules) the
	// edition's installer ISO starts from; the flake reads it, and custom
	// builds start from it. Empty: installer/cd-dvd/installation-cd-minimal.nix.
	Installer string `json:"installer,omitempty"`
	// Custom allows self-serve custom builds of the edition.
	Custom bool `json:"custom,omitempty"`
}

// Artifact is one family of build outputs: for each of its editions (or
// once, when it has none) and each of its architectures, one instance.
type Artifact struct {
	Name string `json:"-"`
	Kind Kind   `json:"kind"`
	// Description is one line for docs.
	Description string `json:"description"`
	// Attribute is the flake attribute path of an instance, a template
	// of {system}, {arch} and {edition}, e.g.
	// "packages.{system}.sourceos-{edition}-iso".
	Attribute string `json:"attribute"`
	// SystemAttribute is the flake attribute of the instance's NixOS
	// system (its toplevel): the closure the cache and the SBOM describe.
	// Empty: the closure of the artifact's own output.
	SystemAttribute string `json:"systemAttribute,omitempty"`
	// File is the file name of an instance in OUT and in a release, a
	// template of {arch} and {edition}; for netboot the base of its
	// files (<base>-kernel, <base>-initrd, <base>.ipxe).
	File string `json:"file"`
	// Editions the artifact is built for; none: one instance per arch,
	// described by HostProfile, Hostname and Capabilities.
	Editions     []string `json:"editions,omitempty"`
	HostProfile  string   `json:"hostProfile,omitempty"`
	Hostname     string   `json:"hostname,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	// Arches it is built for.
	Arches []string `json:"arches"`
	// Channels that ship it.
	Channels []string `json:"channels"`
}

// document is the file's layout.
type document struct {
	Schema    string               `json:"$schema,omitempty"`
	Editions  map[string]*Edition  `json:"editions"`
	Artifacts map[string]*Artifact `json:"artifacts"`
}

// SchemaFile is the catalog's JSON Schema in package schemas.
const SchemaFile = "catalog.schema.json"

// Error says what is wrong with a catalog, entry by entry.
type Error struct {
	Path     string
	Problems []string
}

func (e *Error) Error() string {
	where := e.Path
	if where == "" {
		where = FileName
	}
	return fmt.Sprintf("catalog %s:\n  %s", where, strings.Join(e.Problems, "\n  "))
}

// Load reads and checks the catalog at path.
func Load(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	if len(b) > MaxBytes {
		return nil, &Error{Path: path, Problems: []string{fmt.Sprintf("larger than %d bytes", MaxBytes)}}
	}
	c, err := Parse(b)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return nil, err
	}
	c.Path = path
	return c, nil
}

// Parse checks a catalog: strictly parsed (no key twice, no unknown
// member), valid against schemas/catalog.schema.json, and consistent
// (every edition an artifact names exists, every instance has its own
// attribute and file name). Each problem names its entry.
func Parse(data []byte) (*Catalog, error) {
	if err := schemas.Validate(SchemaFile, data); err != nil {
		return nil, &Error{Problems: schemaProblems(err)}
	}
	var doc document
	if err := strictjson.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Problems: []string{err.Error()}}
	}
	c := &Catalog{}
	for name, e := range doc.Editions {
		e.Name = name
		c.Editions = append(c.Editions, e)
	}
	for name, a := range doc.Artifacts {
		a.Name = name
		c.Artifacts = append(c.Artifacts, a)
	}
	sort.Slice(c.Editions, func(i, j int) bool { return c.Editions[i].Name < c.Editions[j].Name })
	sort.Slice(c.Artifacts, func(i, j int) bool { return c.Artifacts[i].Name < c.Artifacts[j].Name })
	if problems := c.check(); len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

func schemaProblems(err error) []string {
	var se *schemas.Error
	if !errors.As(err, &se) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(se.Problems))
	for _, p := range se.Problems {
		out = append(out, fmt.Sprintf("%s: %s", entryName(p.InstanceLocation), p.Message))
	}
	return out
}

// entryName turns /artifacts/iso/file into artifacts.iso.file.
func entryName(pointer string) string {
	if pointer == "" {
		return "(catalog)"
	}
	return strings.ReplaceAll(strings.TrimPrefix(pointer, "/"), "/", ".")
}

// check finds what the schema cannot: references between entries and
// clashes between instances.
func (c *Catalog) check() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, e := range c.Editions {
		if e.Name == "custom" {
			add("editions.custom: the name is reserved (editions/custom holds the flake of custom builds)")
		}
	}
	for _, a := range c.Artifacts {
		where := "artifacts." + a.Name
		for _, e := range a.Editions {
			if c.Edition(e) == nil {
				add("%s.editions: no edition %q in the catalog", where, e)
			}
		}
		if len(a.Editions) > 0 && (a.HostProfile != "" || a.Hostname != "" || len(a.Capabilities) > 0) {
			add("%s: hostProfile, hostname and capabilities belong to its editions", where)
		}
		if len(a.Editions) == 0 && (a.HostProfile == "" || a.Hostname == "" || len(a.Capabilities) == 0) {
			add("%s: an artifact of no edition needs hostProfile, hostname and capabilities", where)
		}
		problems = append(problems, a.checkTemplates(where)...)
	}
	problems = append(problems, c.checkClashes()...)
	return problems
}

// placeholders may appear in templates.
var placeholderRE = regexp.MustCompile(`\{[^}]*\}`)

var (
	attrRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*(\.[A-Za-z_][A-Za-z0-9_'-]*)*$`)
	fileRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,150}$`)
)

func (a *Artifact) checkTemplates(where string) []string {
	var problems []string
	for field, t := range map[string]string{"attribute": a.Attribute, "systemAttribute": a.SystemAttribute, "file": a.File} {
		for _, p := range placeholderRE.FindAllString(t, -1) {
			switch {
			case p == "{edition}" && len(a.Editions) == 0:
				problems = append(problems, fmt.Sprintf("%s.%s: %s, but the artifact has no editions", where, field, p))
			case p == "{system}" && field == "file":
				problems = append(problems, fmt.Sprintf("%s.file: {system}: a file name uses {arch}", where))
			case p != "{edition}" && p != "{arch}" && p != "{system}":
				problems = append(problems, fmt.Sprintf("%s.%s: unknown placeholder %s (want {edition}, {arch} or {system})", where, field, p))
			}
		}
	}
	if len(a.Editions) > 0 && !strings.Contains(a.File, "{edition}") {
		problems = append(problems, fmt.Sprintf("%s.file: %q must name the {edition}", where, a.File))
	}
	if len(a.Arches) > 1 && !strings.Contains(a.File, "{arch}") {
		problems = append(problems, fmt.Sprintf("%s.file: %q must name the {arch}", where, a.File))
	}
	if ext := FileExt(a.Kind); ext != "" && !strings.HasSuffix(a.File, ext) {
		problems = append(problems, fmt.Sprintf("%s.file: %q: a %s file must end in %s", where, a.File, a.Kind, ext))
	}
	if strings.HasPrefix(a.File, CustomPrefix) {
		problems = append(problems, fmt.Sprintf("%s.file: %q: names starting %q are a custom build's", where, a.File, CustomPrefix))
	}
	return problems
}

// checkClashes requires every instance's attribute, id and file to be its
// own, and each to be well formed once expanded.
func (c *Catalog) checkClashes() []string {
	var problems []string
	seen := map[string]string{}
	claim := func(what, value, by string) {
		key := what + "\x00" + value
		if other, ok := seen[key]; ok && other != by {
			problems = append(problems, fmt.Sprintf("%s and %s have the same %s %q", other, by, what, value))
		}
		seen[key] = by
	}
	for _, in := range c.Instances() {
		by := "artifacts." + in.Artifact.Name + " (" + in.String() + ")"
		if !attrRE.MatchString(in.Attr()) {
			problems = append(problems, fmt.Sprintf("%s: attribute %q is not an attribute path", by, in.Attr()))
		}
		if sa := in.SystemAttr(); sa != "" && !attrRE.MatchString(sa) {
			problems = append(problems, fmt.Sprintf("%s: systemAttribute %q is not an attribute path", by, sa))
		}
		if !fileRE.MatchString(in.File()) {
			problems = append(problems, fmt.Sprintf("%s: file %q is not a plain lower-case file name", by, in.File()))
		}
		claim("attribute", in.Attr(), by)
		claim("file", in.File(), by)
		claim("id", in.ID()+"/"+in.Arch, by)
	}
	return problems
}

// Edition returns the edition of that name, or nil.
func (c *Catalog) Edition(name string) *Edition {
	i := slices.IndexFunc(c.Editions, func(e *Edition) bool { return e.Name == name })
	if i < 0 {
		return nil
	}
	return c.Editions[i]
}

// Artifact returns the artifact of that name, or nil.
func (c *Catalog) Artifact(name string) *Artifact {
	i := slices.IndexFunc(c.Artifacts, func(a *Artifact) bool { return a.Name == name })
	if i < 0 {
		return nil
	}
	return c.Artifacts[i]
}

// EditionNames lists the editions' names, sorted.
func (c *Catalog) EditionNames() []string {
	out := make([]string, len(c.Editions))
	for i, e := range c.Editions {
		out[i] = e.Name
	}
	return out
}

// CustomEditions lists the editions custom builds may start from.
func (c *Catalog) CustomEditions() []string {
	var out []string
	for _, e := range c.Editions {
		if e.Custom {
			out = append(out, e.Name)
		}
	}
	return out
}

// Locate returns the catalog file of a flake: override when set
// (SOURCEOS_CATALOG), else catalog.json at the root of a local flake. A
// remote flake's catalog is read from its source once Nix has fetched it.
func Locate(flake, override string) (string, error) {
	if override != "" {
		return override, nil
	}
	p, ok := LocalPath(flake)
	if !ok {
		return "", fmt.Errorf("flake %s is not a local directory: set SOURCEOS_CATALOG to its catalog file", flake)
	}
	return filepath.Join(p, FileName), nil
}
