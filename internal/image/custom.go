package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/socioprophet/sourceos/editions/custom"
	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/spec"
)

// CustomKinds are what a custom build may make (TARGET).
var CustomKinds = []catalog.Kind{catalog.ISO, catalog.Netboot}

// Custom builds the image a self-serve spec asks for. The spec is validated
// strictly, written as JSON beside the fixed custom flake (never spliced into
// Nix code), and built with the sourceos input overridden to SOURCEOS_FLAKE
// and import-from-derivation off. Its files are named as a custom build's
// (catalog.CustomName), never as a release's.
func Custom(ctx context.Context, d Deps, cat *catalog.Catalog, specPath string) (*Summary, error) {
	if err := refuseKeys(d.Cfg); err != nil {
		return nil, err
	}
	raw, err := readSpec(specPath)
	if err != nil {
		return nil, err
	}
	sp, err := spec.Parse(bytes.NewReader(raw), spec.Options{AllowModuleSnippet: d.Cfg.AllowModuleSnippet, Editions: cat.CustomEditions()})
	if err != nil {
		return nil, err
	}
	c, err := NewCustom(sp, raw, d.Cfg.BuildUID, d.Cfg.BuildID)
	if err != nil {
		return nil, err
	}
	in, err := CustomInstance(cat, sp, catalog.Kind(d.Cfg.Target), c)
	if err != nil {
		return nil, err
	}
	flake := catalog.FlakeRef(d.Cfg.Flake)
	template, err := CustomTemplate(flake)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sourceos-custom-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := composeDir(ctx, d.Run, dir, sp, template, in.Edition); err != nil {
		return nil, err
	}
	req := Request{Instance: in, Flake: "path:" + dir,
		NixArgs:  []string{"--override-input", "sourceos", flake, "--option", "allow-import-from-derivation", "false"},
		Hostname: sp.Hostname, Untrusted: true, Custom: c}
	return runAndSummarise(ctx, d, req)
}

// readSpec reads the spec file as received, bounded.
func readSpec(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("build spec: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, spec.MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("build spec: %w", err)
	}
	return raw, nil
}

// NewCustom describes a custom build of sp, received as raw, for user uid
// and build buildID. Without ids (a local build) the user is "local" and
// the build is named after the spec's digest.
func NewCustom(sp *spec.Spec, raw []byte, uid, buildID string) (*provenance.Custom, error) {
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	if uid == "" {
		uid = "local"
	}
	if buildID == "" {
		buildID = "spec-" + digest[:12]
	}
	canon, err := sp.Canonical()
	if err != nil {
		return nil, err
	}
	return &provenance.Custom{UID: uid, BuildID: buildID, SpecSHA256: digest,
		Spec: json.RawMessage(bytes.TrimSpace(canon)), ModuleSnippet: sp.ModuleSnippet}, nil
}

// CustomInstance is what a custom build of sp makes: an artifact of kind
// (iso or netboot) of sp's edition, built from the custom flake's custom-*
// outputs and named after the custom build.
func CustomInstance(cat *catalog.Catalog, sp *spec.Spec, kind catalog.Kind, c *provenance.Custom) (catalog.Instance, error) {
	e := cat.Edition(sp.Edition)
	if e == nil || !e.Custom {
		return catalog.Instance{}, fmt.Errorf("edition %q does not take custom builds (the catalog's custom editions: %v)", sp.Edition, cat.CustomEditions())
	}
	if kind != catalog.ISO && kind != catalog.Netboot {
		return catalog.Instance{}, fmt.Errorf("TARGET %q: a custom build makes an iso or a netboot set", kind)
	}
	base, err := catalog.CustomName(sp.Edition, sp.Arch, c.UID, c.BuildID)
	if err != nil {
		return catalog.Instance{}, err
	}
	a := &catalog.Artifact{Name: "custom-" + string(kind), Kind: kind,
		Description:     "custom " + string(kind),
		Attribute:       "packages.{system}.custom-" + string(kind),
		SystemAttribute: "packages.{system}.custom-system",
		File:            base + catalog.FileExt(kind), Editions: []string{e.Name}, Arches: []string{sp.Arch}}
	if kind == catalog.Netboot {
		a.SystemAttribute = "packages.{system}.custom-netboot-system"
	}
	return catalog.Instance{Artifact: a, Edition: e, Arch: sp.Arch}, nil
}

// composeDir writes the per-build flake (the template, the normalised spec,
// what the catalog says of its edition) and checks the snippet, if any,
// with the real Nix parser before anything is evaluated.
func composeDir(ctx context.Context, run execx.Runner, dir string, sp *spec.Spec, template []byte, e *catalog.Edition) error {
	files, err := spec.Files(sp, template)
	if err != nil {
		return err
	}
	installer := e.Installer
	if installer == "" {
		installer = catalog.DefaultInstaller
	}
	files[spec.EditionFile], err = json.Marshal(map[string]string{"module": e.Module, "installer": installer})
	if err != nil {
		return err
	}
	if err := spec.WriteDir(dir, files); err != nil {
		return err
	}
	if sp.ModuleSnippet == "" {
		return nil
	}
	res, err := run.Run(ctx, execx.Cmd{Name: "nix-instantiate", Args: []string{"--parse", filepath.Join(dir, spec.SnippetFile)}})
	if err != nil {
		return fmt.Errorf("moduleSnippet does not parse: %w", err)
	}
	if v := spec.CheckSnippetAST(string(res.Stdout)); len(v) > 0 {
		return &spec.SnippetError{Violations: v}
	}
	return nil
}

// CustomTemplate returns the fixed flake of custom builds: the
// editions/custom/flake.nix of the flake being built when that is a local
// directory (so a checkout under test builds with its own), else the copy
// compiled into this binary (a build VM has no checkout).
func CustomTemplate(flake string) ([]byte, error) {
	p, ok := catalog.LocalPath(flake)
	if !ok {
		return custom.Flake, nil
	}
	b, err := os.ReadFile(filepath.Join(p, "editions", "custom", "flake.nix"))
	if os.IsNotExist(err) {
		return custom.Flake, nil // a flake that is not this repository (an adopting tree)
	}
	if err != nil {
		return nil, fmt.Errorf("custom flake template: %w", err)
	}
	return b, nil
}
