package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	_ "embed"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
)

//go:embed nix/module-eval.nix
var moduleEvalNix string

//go:embed nix/nixos-eval.nix
var nixosEvalNix string

// EvalFact is one fact path as an evaluation found it.
type EvalFact struct {
	Path     []string        `json:"path"`
	Defined  bool            `json:"defined"`
	Value    json.RawMessage `json:"value,omitempty"`
	File     string          `json:"file,omitempty"`
	Line     int             `json:"line,omitempty"`
	Conflict bool            `json:"conflict,omitempty"`
}

// HostEval is what evaluating one host gave.
type HostEval struct {
	// Imports are the repository modules the host imports, transitively
	// (module-level evaluation only).
	Imports []string   `json:"imports"`
	Facts   []EvalFact `json:"facts"`
	// Access is what the login and mesh rules check.
	Access *Access `json:"access"`
}

// ModuleRequest is the input of the module-level evaluation.
type ModuleRequest struct {
	Root     string     `json:"root"`
	File     string     `json:"file"`
	Name     string     `json:"name"`
	System   string     `json:"system"`
	Packages []string   `json:"packages"`
	Paths    [][]string `json:"paths"`
	// Modules are the repository modules the flake adds to the host
	// (absolute paths).
	Modules []string `json:"modules"`
	// Args are the stand-ins for extra module arguments, by name.
	Args map[string]StandInRequest `json:"args"`
	// Stubs are the stub option declarations.
	Stubs []StubRequest `json:"stubs"`
	// FactsFile names the host facts file, for positions and messages.
	FactsFile string `json:"factsFile"`
}

// StandInRequest is a StandIn as the evaluation reads it: its kind named.
type StandInRequest struct {
	Kind    string                    `json:"kind"` // package, value, attrs or stub
	Package string                    `json:"package,omitempty"`
	Value   json.RawMessage           `json:"value,omitempty"`
	Attrs   map[string]StandInRequest `json:"attrs,omitempty"`
}

// StubRequest is a StubOption as the evaluation reads it.
type StubRequest struct {
	Path    []string                   `json:"path"`
	Kind    string                     `json:"kind"` // default or attrsOf
	Default json.RawMessage            `json:"default,omitempty"`
	AttrsOf map[string]json.RawMessage `json:"attrsOf,omitempty"`
}

// NewModuleRequest builds the module-level evaluation's request for a host.
func NewModuleRequest(root, name string, hc HostEntry, setup HostSetup, packages []string) ModuleRequest {
	req := ModuleRequest{
		Root: root, File: filepath.Join(root, hc.File), Name: name, System: hc.System,
		Packages: packages, Paths: factPaths(hc), Modules: []string{},
		Args: map[string]StandInRequest{}, Stubs: []StubRequest{}, FactsFile: HostFactsFile,
	}
	for _, m := range setup.Modules {
		req.Modules = append(req.Modules, filepath.Join(root, m))
	}
	for n, s := range setup.ModuleArgs {
		req.Args[n] = standInRequest(s)
	}
	for _, p := range sortedKeys(setup.StubOptions) {
		o := setup.StubOptions[p]
		path, _ := SplitPath(p) // validated by ParseHostFacts
		r := StubRequest{Path: path, Kind: "default", Default: o.Default}
		if o.AttrsOf != nil {
			r = StubRequest{Path: path, Kind: "attrsOf", AttrsOf: o.AttrsOf}
		}
		req.Stubs = append(req.Stubs, r)
	}
	return req
}

func standInRequest(s StandIn) StandInRequest {
	switch {
	case s.Package != "":
		return StandInRequest{Kind: "package", Package: s.Package}
	case s.Value != nil:
		return StandInRequest{Kind: "value", Value: s.Value}
	case s.Attrs != nil:
		r := StandInRequest{Kind: "attrs", Attrs: map[string]StandInRequest{}}
		for n, c := range s.Attrs {
			r.Attrs[n] = standInRequest(c)
		}
		return r
	}
	return StandInRequest{Kind: "stub"}
}

// NixOSRequest is the input of the evaluation of a flake's nixosConfigurations.
type NixOSRequest struct {
	Flake string     `json:"flake"`
	Name  string     `json:"name"`
	Paths [][]string `json:"paths"`
}

// EvalFiles are the evaluation expressions, written out for nix-instantiate.
type EvalFiles struct {
	Module string // module-eval.nix
	NixOS  string // nixos-eval.nix
}

// WriteEvalFiles writes the embedded evaluation expressions into dir.
func WriteEvalFiles(dir string) (EvalFiles, error) {
	f := EvalFiles{Module: filepath.Join(dir, "module-eval.nix"), NixOS: filepath.Join(dir, "nixos-eval.nix")}
	if err := os.WriteFile(f.Module, []byte(moduleEvalNix), 0o644); err != nil {
		return f, err
	}
	return f, os.WriteFile(f.NixOS, []byte(nixosEvalNix), 0o644)
}

// ModuleEvalCmd evaluates one host module against stand-ins.
func ModuleEvalCmd(nixInstantiate string, files EvalFiles, req ModuleRequest) (execx.Cmd, error) {
	return evalCmd(nixInstantiate, files.Module, req, nil)
}

// NixOSEvalCmd evaluates fact paths in a flake's nixosConfigurations.
func NixOSEvalCmd(nixInstantiate string, files EvalFiles, req NixOSRequest) (execx.Cmd, error) {
	return evalCmd(nixInstantiate, files.NixOS, req,
		[]string{"--option", "extra-experimental-features", "nix-command flakes"})
}

// evalCmd evaluates a fixed expression file with the request as a string
// argument: request data never becomes Nix code.
func evalCmd(nixInstantiate, file string, req any, extra []string) (execx.Cmd, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return execx.Cmd{}, err
	}
	args := append([]string{"--eval", "--strict", "--json"}, extra...)
	args = append(args, file, "--argstr", "request", string(b))
	return execx.Cmd{Name: nixInstantiate, Args: args}, nil
}

// ParseHostEval decodes an evaluation's JSON output.
func ParseHostEval(b []byte) (*HostEval, error) {
	var ev HostEval
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("decode evaluation output: %w", err)
	}
	return &ev, nil
}

// checkHosts evaluates every declared host and compares it with its facts.
func checkHosts(ctx context.Context, opts Options) (Result, HostMode) {
	res := Result{Check: CheckHosts}
	c, err := LoadHostFacts(opts.Root)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckHosts, File: HostFactsFile, Message: err.Error()})
		return res, ""
	}
	dir, err := os.MkdirTemp("", "sourceos-hosts-")
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckHosts, File: HostFactsFile, Message: err.Error()})
		return res, ""
	}
	defer os.RemoveAll(dir)
	files, err := WriteEvalFiles(dir)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckHosts, File: HostFactsFile, Message: err.Error()})
		return res, ""
	}
	mode, note, unusable := chooseMode(ctx, opts)
	res.Note = note
	res.Failures = append(res.Failures, undeclaredHosts(opts.Root, c)...)
	if unusable != nil {
		res.Failures = append(res.Failures, *unusable)
		return res, mode
	}
	h := hostEval{opts: opts, mode: mode, files: files, facts: c, pkgs: PackageNames(c, nixSources(opts.Root)...)}
	for _, name := range c.HostNames() {
		res.Checked++
		res.Failures = append(res.Failures, h.check(ctx, name, c.Hosts[name])...)
	}
	return res, mode
}

// hostEval is what evaluating each host needs.
type hostEval struct {
	opts  Options
	mode  HostMode
	files EvalFiles
	facts *HostFacts
	pkgs  []string
}

// undeclaredHosts: every hosts/<name>/ directory needs an entry in hosts/facts.json.
func undeclaredHosts(root string, c *HostFacts) []Failure {
	entries, err := os.ReadDir(filepath.Join(root, "hosts"))
	if err != nil {
		return []Failure{{Check: CheckHosts, File: "hosts", Message: err.Error()}}
	}
	var out []Failure
	for _, e := range entries {
		if _, ok := c.Hosts[e.Name()]; e.IsDir() && !ok {
			out = append(out, Failure{Check: CheckHosts, File: HostFactsFile, Subject: e.Name(),
				Message: "host directory hosts/" + e.Name() + "/ has no entry in hosts/facts.json", Expected: "an entry in " + HostFactsFile, Found: "none"})
		}
	}
	return out
}

func nixSources(root string) [][]byte {
	files, _ := repoFiles(root, func(rel string, _ os.DirEntry) bool { return strings.HasSuffix(rel, ".nix") })
	var out [][]byte
	for _, f := range files {
		if b, err := os.ReadFile(filepath.Join(root, f)); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// check evaluates one host (module level always, for imports and
// positions; nixos mode adds the real configuration's values) and compares.
func (h hostEval) check(ctx context.Context, name string, hc HostEntry) []Failure {
	opts, paths := h.opts, factPaths(hc)
	ev, fail := runEval(ctx, opts, hc.File, func() (execx.Cmd, error) {
		return ModuleEvalCmd(opts.Tools.NixInstantiate, h.files,
			NewModuleRequest(opts.Root, name, hc, h.facts.Setup(hc), h.pkgs))
	})
	if fail != nil {
		fail.Subject = name + ": module-level evaluation"
		return []Failure{*fail}
	}
	if h.mode == ModeNixOS {
		full, fail := runEval(ctx, opts, hc.File, func() (execx.Cmd, error) {
			return NixOSEvalCmd(opts.Tools.NixInstantiate, h.files, NixOSRequest{Flake: catalog.FlakeRef(opts.Root), Name: name, Paths: paths})
		})
		if fail != nil {
			fail.Subject = name + ": nixosConfigurations evaluation"
			return []Failure{*fail}
		}
		ev.Facts = withPositions(full.Facts, ev.Facts)
		if full.Access != nil && ev.Access != nil {
			full.Access.Where = ev.Access.Where
		}
		ev.Access = full.Access
	}
	return append(CompareHost(name, hc, ev), CheckAccess(name, hc, ev.Access)...)
}

func factPaths(hc HostEntry) [][]string {
	out := make([][]string, len(hc.Facts))
	for i, f := range hc.Facts {
		out[i], _ = SplitPath(f.Path) // validated by ParseHostFacts
	}
	return out
}

// runEval runs one evaluation; a failure to evaluate is reported against
// the host file (or where Nix located the error).
func runEval(ctx context.Context, opts Options, file string, build func() (execx.Cmd, error)) (*HostEval, *Failure) {
	cmd, err := build()
	if err == nil {
		var r execx.Result
		r, err = opts.Run.Run(ctx, cmd)
		if err == nil {
			ev, perr := ParseHostEval(r.Stdout)
			if perr == nil {
				return ev, nil
			}
			err = perr
		}
	}
	f := &Failure{Check: CheckHosts, File: file, Message: "evaluation failed: " + err.Error()}
	var xe *execx.Error
	if errors.As(err, &xe) {
		ne := ParseNixError(xe.Stderr, opts.Root)
		f.Message = "evaluation failed: " + ne.Message
		if ne.File != "" {
			f.File, f.Line = ne.File, ne.Line
		}
	}
	return nil, f
}

// withPositions takes values from the full evaluation and, where the full
// evaluation cannot give a line, the module-level evaluation's position.
func withPositions(full, module []EvalFact) []EvalFact {
	out := slices.Clone(full)
	for i := range out {
		if i < len(module) && module[i].Defined && (out[i].File == "" || out[i].File == module[i].File) {
			out[i].File, out[i].Line = module[i].File, module[i].Line
		}
	}
	return out
}

// CompareHost checks one host's evaluation against its facts.
func CompareHost(name string, hc HostEntry, ev *HostEval) []Failure {
	var out []Failure
	for _, want := range hc.Imports {
		if !slices.Contains(ev.Imports, want) {
			out = append(out, Failure{Check: CheckHosts, File: hc.File, Subject: name + ": imports",
				Message: "required module not imported", Expected: want, Found: listOrNone(ev.Imports)})
		}
	}
	for i, f := range hc.Facts {
		if i >= len(ev.Facts) {
			out = append(out, Failure{Check: CheckHosts, File: hc.File, Subject: name + ": " + f.Path,
				Message: "evaluation returned no value"})
			continue
		}
		if fail, ok := compareFact(name, hc.File, f, ev.Facts[i]); !ok {
			out = append(out, fail)
		}
	}
	return out
}

func compareFact(host, hostFile string, want Fact, got EvalFact) (Failure, bool) {
	fail := Failure{Check: CheckHosts, File: hostFile, Subject: host + ": " + want.Path, Expected: want.Expected()}
	if got.File != "" {
		fail.File, fail.Line = got.File, got.Line
	}
	switch {
	case !got.Defined:
		fail.Found = "not set"
		return fail, false
	case got.Conflict:
		fail.Message = "conflicting definitions at the same priority"
		fail.Found = compactJSON(got.Value) + " and another value"
		return fail, false
	}
	found, ok := foundValue(want, got.Value)
	fail.Found = found
	return fail, ok
}

// foundValue renders what was found and whether it satisfies want.
func foundValue(want Fact, value json.RawMessage) (string, bool) {
	if want.Package != "" {
		var p struct {
			Package *string `json:"package"`
		}
		if json.Unmarshal(value, &p) != nil || p.Package == nil {
			return compactJSON(value), false
		}
		return "package " + *p.Package, *p.Package == want.Package
	}
	var a, b any
	if json.Unmarshal(want.Equals, &a) != nil || json.Unmarshal(value, &b) != nil {
		return compactJSON(value), false
	}
	return compactJSON(value), reflect.DeepEqual(a, b)
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "no repository modules"
	}
	return strings.Join(xs, ", ")
}
