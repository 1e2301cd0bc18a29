// Package buildrecord is what an image build reports about itself, written
// beside the image as <image>.build.json: what was asked for, what Nix
// built, the image's runtime closure and the image's digest as the builder
// computed it.
//
// A custom build runs user-supplied Nix code on a machine that holds no
// key; the record is how it hands its result to the trusted step that signs
// (`mage gcp:attest`). That step never takes the record's word for the image:
// it hashes the image itself and refuses a record whose digest disagrees.
// What only the builder can know (store paths, closure) goes into the
// provenance marked as reported by the builder. The record is read with
// bounded size and strictly, as anything written by an untrusted party.
package buildrecord

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/strictjson"
)

// Ext is the suffix of a record beside its image.
const Ext = ".build.json"

// Schema names this format.
const Schema = "https://sourceos.dev/build-record/v2"

// MaxFiles bounds the files a record lists (a netboot set has four).
const MaxFiles = 8

// Limits on a record read from an untrusted builder.
const (
	MaxBytes   = 64 << 20 // a desktop closure of ~5,000 paths is a few MB
	MaxClosure = 200_000
)

// Record is one build's report.
type Record struct {
	Schema string `json:"schema"`
	// Artifact is the file name of the image, or the base name of a
	// netboot set's files; the record is <Artifact>.build.json.
	Artifact string `json:"artifact"`
	// Files are every file the build made, as the builder hashed them.
	Files    []File `json:"files"`
	Edition  string `json:"edition"`
	Arch     string `json:"arch"`
	Target   string `json:"target"`
	Hostname string `json:"hostname,omitempty"`
	// Spec is the normalised custom build spec, when there is one;
	// SpecSHA256 the SHA-256 of the spec as the builder received it.
	Spec       json.RawMessage `json:"spec,omitempty"`
	SpecSHA256 string          `json:"specSha256,omitempty"`
	FlakeRef   string          `json:"flakeRef"`
	FlakeAttr  string          `json:"flakeAttr"`
	// StorePaths maps output kinds (system, iso, netboot) to store paths.
	StorePaths map[string]string   `json:"storePaths"`
	Closure    []nixstore.PathInfo `json:"closure"`
	NixVersion string              `json:"nixVersion,omitempty"`
	StartedOn  time.Time           `json:"startedOn"`
	FinishedOn time.Time           `json:"finishedOn"`
}

// File is one file of a build, as the builder hashed it.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File returns the record's file of that name.
func (r *Record) File(name string) (File, bool) {
	for _, f := range r.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Marshal encodes r (indented, final newline).
func (r *Record) Marshal() ([]byte, error) {
	if r.Schema == "" {
		r.Schema = Schema
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("build record: %w", err)
	}
	return append(b, '\n'), nil
}

// Read decodes a record from an untrusted source: at most MaxBytes, strict
// JSON, every field checked.
func Read(rd io.Reader) (*Record, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("build record: %w", err)
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("build record: larger than %d bytes", MaxBytes)
	}
	var r Record
	if err := strictjson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("build record: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("build record: %w", err)
	}
	return &r, nil
}

var (
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	fileNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,220}$`)
	wordRe     = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
)

// Validate checks every field's shape.
func (r *Record) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(r.Schema == Schema, "schema %q: want %q", r.Schema, Schema)
	check(fileNameRe.MatchString(r.Artifact), "artifact %q is not a plain file name", r.Artifact)
	check(len(r.Files) > 0 && len(r.Files) <= MaxFiles, "%d files (1 to %d)", len(r.Files), MaxFiles)
	seen := map[string]bool{}
	for i, f := range r.Files {
		check(fileNameRe.MatchString(f.Name) && !seen[f.Name], "files[%d]: name %q is not a plain file name, or listed twice", i, f.Name)
		check(f.Size > 0, "files[%d]: size %d", i, f.Size)
		check(sha256Re.MatchString(f.SHA256), "files[%d]: sha256 %q is not 64 lowercase hex digits", i, f.SHA256)
		seen[f.Name] = true
	}
	check(r.SpecSHA256 == "" || sha256Re.MatchString(r.SpecSHA256), "specSha256 %q is not 64 lowercase hex digits", r.SpecSHA256)
	for name, v := range map[string]string{"edition": r.Edition, "arch": r.Arch, "target": r.Target} {
		check(wordRe.MatchString(v), "%s %q", name, v)
	}
	check(len(r.Closure) <= MaxClosure, "closure of %d paths (at most %d)", len(r.Closure), MaxClosure)
	for kind, p := range r.StorePaths {
		check(wordRe.MatchString(kind) && nixstore.ValidatePath(p) == nil, "storePaths[%q] = %q", kind, p)
	}
	for i, p := range r.Closure {
		if err := validPathInfo(p); err != nil {
			errs = append(errs, fmt.Errorf("closure[%d]: %w", i, err))
			break
		}
	}
	return errors.Join(errs...)
}

func validPathInfo(p nixstore.PathInfo) error {
	if err := nixstore.ValidatePath(p.Path); err != nil {
		return err
	}
	if _, err := nixstore.NormaliseHash(p.NarHash); err != nil {
		return fmt.Errorf("%s: narHash: %w", p.Path, err)
	}
	for _, ref := range p.References {
		if err := nixstore.ValidatePath(ref); err != nil {
			return fmt.Errorf("%s: reference: %w", p.Path, err)
		}
	}
	if p.Deriver != "" {
		if err := nixstore.ValidatePath(p.Deriver); err != nil {
			return fmt.Errorf("%s: deriver: %w", p.Path, err)
		}
	}
	return nil
}
