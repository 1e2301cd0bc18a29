// Package spec holds the self-serve custom build spec: what a user may ask
// for (edition, arch, hostname, packages, services, users, an optional NixOS
// module snippet), strict validation with precise errors, and composing the
// per-build flake directory without putting user strings into Nix code.
//
// A spec is read in either of the shapes the self-serve backend sends (the
// services as a list of names, or as the object of booleans of the shell
// pipeline; edition, arch and hostname left out for their defaults) and
// normalised: Spec is the normalised form, and Canonical is what a build
// uses and its provenance records.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// Spec is a custom build request, normalised: every field has its value
// (defaults filled in) and Services lists the services turned on.
type Spec struct {
	Edition       string   `json:"edition"`
	Arch          string   `json:"arch"`
	Hostname      string   `json:"hostname"`
	Packages      []string `json:"packages,omitempty"`
	Services      []string `json:"services,omitempty"`
	Users         []User   `json:"users,omitempty"`
	ModuleSnippet string   `json:"moduleSnippet,omitempty"`
}

// User is a login account to create on the image.
type User struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
}

// Limits on sizes, so a spec cannot blow up evaluation or logs.
const (
	MaxSpecBytes    = 256 << 10
	MaxSnippetBytes = 64 << 10
	MaxPackages     = 200
	MaxUsers        = 32
	MaxServices     = 16 // names in either shape: more than the allow-list has
	MaxNameLen      = 100
)

// Defaults of the fields a spec may leave out or set to null, as the shell
// pipeline's self-serve builder had them. DefaultEdition must be one of the
// catalog's custom editions.
const (
	DefaultEdition  = "desktop"
	DefaultArch     = "x86_64"
	DefaultHostname = "sourceos"
)

// Allowed values (editions come from the catalog: Options.Editions).
var (
	Arches   = []string{"x86_64", "aarch64"}
	Services = []string{"openssh", "docker"}
	Groups   = []string{"wheel", "networkmanager", "docker", "video", "audio", "dialout", "plugdev"}
)

var (
	// hostnameRE is an RFC 1123 label in lower case.
	hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// packageRE is a dotted nixpkgs attribute path of plain identifiers.
	packageRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*){0,4}$`)
	// userRE is a conservative POSIX login name.
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// FieldError says which field broke which rule, with the offending value.
type FieldError struct {
	Field string
	Value string
	Rule  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s (got %s)", e.Field, e.Rule, quoteValue(e.Value))
}

// quoteValue shows a value safely: quoted, escaped, and cut when long.
func quoteValue(v string) string {
	const max = 64
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		return fmt.Sprintf("%q… (%d bytes)", v[:cut], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// ValidationError lists every rule a spec broke.
type ValidationError struct{ Errors []*FieldError }

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return "invalid build spec:\n  " + strings.Join(msgs, "\n  ")
}

// Options change what a spec may contain.
type Options struct {
	// AllowModuleSnippet permits moduleSnippet (SOURCEOS_ALLOW_MODULE_SNIPPET).
	AllowModuleSnippet bool
	// Editions a spec may ask for: the catalog's custom editions.
	Editions []string
}

// Parse decodes a spec strictly (unknown fields and trailing data are errors)
// and validates it.
func Parse(r io.Reader, opts Options) (*Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if len(data) > MaxSpecBytes {
		return nil, &ValidationError{[]*FieldError{{Field: "(spec)", Value: fmt.Sprintf("%d+ bytes", MaxSpecBytes), Rule: fmt.Sprintf("at most %d bytes", MaxSpecBytes)}}}
	}
	if !utf8.Valid(data) {
		return nil, &ValidationError{[]*FieldError{{Field: "(spec)", Value: "", Rule: "must be UTF-8"}}}
	}
	var in received
	if err := strictjson.Unmarshal(data, &in); err != nil {
		return nil, &ValidationError{[]*FieldError{jsonFieldError(err)}}
	}
	s, errs := in.normalise()
	if err := s.validate(opts, errs); err != nil {
		return nil, err
	}
	return s, nil
}

// received is a spec as sent. A field left out or null takes its default;
// services come as a list of names or as an object of booleans.
type received struct {
	Edition       *string         `json:"edition"`
	Arch          *string         `json:"arch"`
	Hostname      *string         `json:"hostname"`
	Packages      []string        `json:"packages"`
	Services      json.RawMessage `json:"services"`
	Users         []User          `json:"users"`
	ModuleSnippet string          `json:"moduleSnippet"`
}

// normalise fills in the defaults and reads the services in either shape;
// it returns what it could not read as field errors.
func (r *received) normalise() (*Spec, []*FieldError) {
	svcs, errs := readServices(r.Services)
	return &Spec{
		Edition:       orDefault(r.Edition, DefaultEdition),
		Arch:          orDefault(r.Arch, DefaultArch),
		Hostname:      orDefault(r.Hostname, DefaultHostname),
		Packages:      r.Packages,
		Services:      svcs,
		Users:         r.Users,
		ModuleSnippet: r.ModuleSnippet,
	}, errs
}

func orDefault(v *string, def string) string {
	if v == nil {
		return def
	}
	return *v
}

// servicesShape is the rule both shapes of services follow.
const servicesShape = `must be a list of service names (["openssh"]) or an object of booleans ({"openssh": true, "docker": false})`

// readServices reads the services member: absent or null (none), a list
// of names (checked by Validate), or an object of booleans, where true
// turns a service on and false leaves it off. In the object every name
// must be an allowed service, whatever its value.
func readServices(raw json.RawMessage) ([]string, []*FieldError) {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0 || string(trimmed) == "null":
		return nil, nil
	case trimmed[0] == '[':
		var list []string
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, []*FieldError{{Field: "services", Value: string(trimmed), Rule: servicesShape}}
		}
		return list, nil
	case trimmed[0] == '{':
		return readServiceObject(trimmed)
	}
	return nil, []*FieldError{{Field: "services", Value: string(trimmed), Rule: servicesShape}}
}

// readServiceObject reads {"name": bool, …}; the names are reported in
// sorted order. (strictjson has already refused a name given twice.)
func readServiceObject(data []byte) ([]string, []*FieldError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, []*FieldError{{Field: "services", Value: string(data), Rule: servicesShape}}
	}
	if len(obj) > MaxServices {
		return nil, []*FieldError{{Field: "services", Value: fmt.Sprintf("%d names", len(obj)), Rule: fmt.Sprintf("at most %d names", MaxServices)}}
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	sort.Strings(names)
	var on []string
	var errs []*FieldError
	for _, name := range names {
		field := "services." + name
		if !contains(Services, name) {
			errs = append(errs, &FieldError{Field: field, Value: name, Rule: "is not a service a spec may name: must be one of " + strings.Join(Services, ", ")})
			continue
		}
		switch string(bytes.TrimSpace(obj[name])) {
		case "true":
			on = append(on, name)
		case "false":
		default:
			errs = append(errs, &FieldError{Field: field, Value: string(obj[name]), Rule: "must be true (turn the service on) or false (leave it off)"})
		}
	}
	return on, errs
}

// jsonFieldError says what strictjson refused, in the spec's terms.
func jsonFieldError(err error) *FieldError {
	var je *strictjson.Error
	if !errors.As(err, &je) {
		return &FieldError{Field: "(spec)", Value: err.Error(), Rule: "must be a JSON object"}
	}
	field := func() string { return pointerField(je.Pointer, je.Key) }
	switch je.Reason {
	case strictjson.Unknown:
		return &FieldError{Field: field(), Value: je.Key, Rule: "unknown field (field names are case-sensitive)"}
	case strictjson.Duplicate:
		return &FieldError{Field: field(), Value: je.Key, Rule: "given twice"}
	case strictjson.CaseVariant:
		return &FieldError{Field: field(), Value: je.Key, Rule: "given twice, in two cases"}
	case strictjson.Trailing:
		return &FieldError{Field: "(spec)", Value: "trailing data", Rule: "must hold exactly one JSON object"}
	}
	return &FieldError{Field: "(spec)", Value: je.Msg, Rule: "must be a JSON object with only the known fields (edition, arch, hostname, packages, services, users, moduleSnippet)"}
}

// pointerField turns a JSON pointer and a key into the spec's field
// notation: /users/0 and "uid" become users[0].uid.
func pointerField(pointer, key string) string {
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		switch {
		case tok == "":
		case tok[0] >= '0' && tok[0] <= '9':
			fmt.Fprintf(&b, "[%s]", tok)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		}
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	return b.String() + key
}

// Validate checks every field and reports every broken rule at once.
func (s *Spec) Validate(opts Options) error { return s.validate(opts, nil) }

// validate is Validate, adding the errors found before (reading the spec).
func (s *Spec) validate(opts Options, before []*FieldError) error {
	v := &validator{errs: before}
	if len(opts.Editions) == 0 {
		v.fail("edition", s.Edition, "is not one custom builds may start from: the catalog marks no edition custom")
	} else {
		v.oneOf("edition", s.Edition, opts.Editions)
	}
	v.oneOf("arch", s.Arch, Arches)
	v.match("hostname", s.Hostname, hostnameRE, "must be a lower-case RFC 1123 label (a-z, 0-9, '-', 1-63 chars, no leading or trailing '-')")
	v.packages(s.Packages)
	v.services(s.Services)
	v.users(s.Users)
	v.snippet(s.ModuleSnippet, opts)
	if len(v.errs) > 0 {
		return &ValidationError{Errors: v.errs}
	}
	return nil
}

type validator struct{ errs []*FieldError }

func (v *validator) fail(field, value, rule string) {
	v.errs = append(v.errs, &FieldError{Field: field, Value: value, Rule: rule})
}

func (v *validator) oneOf(field, value string, allowed []string) {
	if !contains(allowed, value) {
		v.fail(field, value, "must be one of "+strings.Join(allowed, ", "))
	}
}

func (v *validator) match(field, value string, re *regexp.Regexp, rule string) {
	if !re.MatchString(value) {
		v.fail(field, value, rule)
	}
}

func (v *validator) packages(pkgs []string) {
	if len(pkgs) > MaxPackages {
		v.fail("packages", fmt.Sprintf("%d entries", len(pkgs)), fmt.Sprintf("at most %d packages", MaxPackages))
		return
	}
	seen := map[string]bool{}
	for i, p := range pkgs {
		field := fmt.Sprintf("packages[%d]", i)
		switch {
		case len(p) > MaxNameLen:
			v.fail(field, p, fmt.Sprintf("at most %d characters", MaxNameLen))
		case !packageRE.MatchString(p):
			v.fail(field, p, "must be a nixpkgs attribute path of ASCII identifiers (e.g. htop or python3Packages.requests)")
		case seen[p]:
			v.fail(field, p, "listed twice")
		}
		seen[p] = true
	}
}

func (v *validator) services(svcs []string) {
	if len(svcs) > MaxServices {
		v.fail("services", fmt.Sprintf("%d entries", len(svcs)), fmt.Sprintf("at most %d services", MaxServices))
		return
	}
	seen := map[string]bool{}
	for i, s := range svcs {
		field := fmt.Sprintf("services[%d]", i)
		if !contains(Services, s) {
			v.fail(field, s, "must be one of "+strings.Join(Services, ", "))
		} else if seen[s] {
			v.fail(field, s, "listed twice")
		}
		seen[s] = true
	}
}

func (v *validator) users(users []User) {
	if len(users) > MaxUsers {
		v.fail("users", fmt.Sprintf("%d entries", len(users)), fmt.Sprintf("at most %d users", MaxUsers))
		return
	}
	seen := map[string]bool{}
	for i, u := range users {
		field := fmt.Sprintf("users[%d].name", i)
		switch {
		case !userRE.MatchString(u.Name):
			v.fail(field, u.Name, "must be a login name: a-z, 0-9, '_' or '-', starting with a letter or '_', at most 32 characters")
		case IsSystemAccount(u.Name) || strings.HasPrefix(u.Name, "nixbld"):
			v.fail(field, u.Name, "is a system account of NixOS (root, the installer's nixos, a service's account): choose another name")
		case seen[u.Name]:
			v.fail(field, u.Name, "listed twice")
		}
		seen[u.Name] = true
		for j, g := range u.Groups {
			if !contains(Groups, g) {
				v.fail(fmt.Sprintf("users[%d].groups[%d]", i, j), g, "must be one of "+strings.Join(Groups, ", "))
			}
		}
	}
}

func (v *validator) snippet(snippet string, opts Options) {
	switch {
	case snippet == "":
	case !opts.AllowModuleSnippet:
		v.fail("moduleSnippet", snippet, "is not allowed here (set SOURCEOS_ALLOW_MODULE_SNIPPET=1 to allow it)")
	case len(snippet) > MaxSnippetBytes:
		v.fail("moduleSnippet", snippet, fmt.Sprintf("at most %d bytes", MaxSnippetBytes))
	case strings.ContainsRune(snippet, 0):
		v.fail("moduleSnippet", "", "must not contain NUL bytes")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Canonical returns the spec as the JSON the fixed flake reads: sorted
// lists, no snippet text (it lives in its own file), and a flag saying
// whether a snippet is present.
func (s *Spec) Canonical() ([]byte, error) {
	out := struct {
		Edition    string   `json:"edition"`
		Arch       string   `json:"arch"`
		Hostname   string   `json:"hostname"`
		Packages   []string `json:"packages"`
		Services   []string `json:"services"`
		Users      []User   `json:"users"`
		HasSnippet bool     `json:"hasSnippet"`
	}{s.Edition, s.Arch, s.Hostname, sorted(s.Packages), sorted(s.Services), s.Users, s.ModuleSnippet != ""}
	if out.Users == nil {
		out.Users = []User{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	return append(b, '\n'), nil
}

func sorted(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	return out
}

// IsValidation reports whether err is a spec validation error.
func IsValidation(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}
