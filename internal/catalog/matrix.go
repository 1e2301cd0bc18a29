package catalog

import (
	"fmt"
	"slices"
	"strings"
)

// Entry is one row of a workflow matrix: one instance of the catalog.
type Entry struct {
	ID      string `json:"id,omitempty"`
	Edition string `json:"edition,omitempty"`
	Kind    Kind   `json:"kind,omitempty"`
	Arch    string `json:"arch,omitempty"`
	File    string `json:"file,omitempty"`
}

// Matrix is a GitHub Actions matrix: {"include": [...]}.
type Matrix struct {
	Include []Entry `json:"include"`
}

// Filter selects instances: every field that is set must match.
type Filter struct {
	Channel, Edition, Arch string
	Kind                   Kind
}

// ParseFilter reads key=value words (channel, edition, arch, kind).
func ParseFilter(words []string) (Filter, error) {
	var f Filter
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || v == "" {
			return f, fmt.Errorf("filter %q: want key=value (channel, edition, arch or kind)", w)
		}
		switch k {
		case "channel":
			f.Channel = v
		case "edition":
			f.Edition = v
		case "arch":
			f.Arch = v
		case "kind":
			f.Kind = Kind(v)
		default:
			return f, fmt.Errorf("filter %q: unknown key %q (channel, edition, arch or kind)", w, k)
		}
	}
	return f, nil
}

func (f Filter) match(in Instance) bool {
	return (f.Channel == "" || slices.Contains(in.Artifact.Channels, f.Channel)) &&
		(f.Edition == "" || in.EditionName() == f.Edition) &&
		(f.Arch == "" || in.Arch == f.Arch) &&
		(f.Kind == "" || in.Kind() == f.Kind)
}

// Matrix is the instances f selects, as a workflow matrix. An empty
// selection is an error: a workflow job with an empty matrix fails.
func (c *Catalog) Matrix(f Filter) (Matrix, error) {
	m := Matrix{Include: []Entry{}}
	for _, in := range c.Instances() {
		if f.match(in) {
			m.Include = append(m.Include, Entry{ID: in.ID(), Edition: in.EditionName(), Kind: in.Kind(), Arch: in.Arch, File: in.File()})
		}
	}
	if len(m.Include) == 0 {
		return m, fmt.Errorf("the catalog has no artifact matching %+v", f)
	}
	return m, nil
}

// EditionMatrix is one row per edition: {"include": [{"edition": …}]}.
func (c *Catalog) EditionMatrix() Matrix {
	m := Matrix{Include: []Entry{}}
	for _, e := range c.Editions {
		m.Include = append(m.Include, Entry{Edition: e.Name})
	}
	return m
}

// Select is the matrix a `mage catalog:matrix` argument asks for:
// "editions" (one row per edition), "all", or comma-separated key=value
// filters, e.g. "channel=stable" or "kind=iso,arch=x86_64".
func (c *Catalog) Select(arg string) (Matrix, error) {
	switch arg {
	case "editions":
		return c.EditionMatrix(), nil
	case "all":
		return c.Matrix(Filter{})
	}
	f, err := ParseFilter(strings.Split(arg, ","))
	if err != nil {
		return Matrix{}, err
	}
	return c.Matrix(f)
}
