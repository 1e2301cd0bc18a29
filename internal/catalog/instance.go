package catalog

import (
	"fmt"
	"slices"
	"strings"
)

// Instance is one buildable artifact: an artifact of the catalog for one
// edition (nil for an artifact of no edition) and one architecture.
type Instance struct {
	Artifact *Artifact
	Edition  *Edition
	Arch     string
}

// Instances lists every instance of the catalog: artifacts by name, then
// editions by name, then architectures in the artifact's order.
func (c *Catalog) Instances() []Instance {
	var out []Instance
	for _, a := range c.Artifacts {
		out = append(out, a.instances(c)...)
	}
	return out
}

func (a *Artifact) instances(c *Catalog) []Instance {
	var out []Instance
	editions := []*Edition{nil}
	if len(a.Editions) > 0 {
		editions = editions[:0]
		for _, e := range c.Editions {
			if slices.Contains(a.Editions, e.Name) {
				editions = append(editions, e)
			}
		}
	}
	for _, e := range editions {
		for _, arch := range a.Arches {
			out = append(out, Instance{Artifact: a, Edition: e, Arch: arch})
		}
	}
	return out
}

// System is the Nix system of the instance, e.g. x86_64-linux.
func (in Instance) System() string { return System(in.Arch) }

// System is the Nix system of an architecture.
func System(arch string) string { return arch + "-linux" }

// EditionName is the instance's edition, "" when it has none.
func (in Instance) EditionName() string {
	if in.Edition == nil {
		return ""
	}
	return in.Edition.Name
}

func (in Instance) expand(t string) string {
	return strings.NewReplacer("{edition}", in.EditionName(), "{arch}", in.Arch, "{system}", in.System()).Replace(t)
}

// Attr is the flake attribute path of the instance.
func (in Instance) Attr() string { return in.expand(in.Artifact.Attribute) }

// SystemAttr is the flake attribute of the instance's NixOS system, ""
// when the catalog names none.
func (in Instance) SystemAttr() string { return in.expand(in.Artifact.SystemAttribute) }

// File is the instance's file name (netboot: the base of its files).
func (in Instance) File() string { return in.expand(in.Artifact.File) }

// ID names the instance across architectures: the last component of its
// attribute path without the system, e.g. sourceos-desktop-iso. Channel
// manifests list instances by ID.
func (in Instance) ID() string {
	attr := in.expand(strings.ReplaceAll(in.Artifact.Attribute, "{system}", ""))
	return attr[strings.LastIndex(attr, ".")+1:]
}

// Kind is the artifact's kind.
func (in Instance) Kind() Kind { return in.Artifact.Kind }

// HostProfile is the OSImage host profile of the instance.
func (in Instance) HostProfile() string {
	if in.Edition != nil {
		return in.Edition.HostProfile
	}
	return in.Artifact.HostProfile
}

// Hostname is the default host name of the instance's system.
func (in Instance) Hostname() string {
	if in.Edition != nil {
		return in.Edition.Hostname
	}
	return in.Artifact.Hostname
}

// Capabilities are the OSImage substrate capabilities of the instance.
func (in Instance) Capabilities() []string {
	if in.Edition != nil {
		return in.Edition.Capabilities
	}
	return in.Artifact.Capabilities
}

// String is "<id> (<arch>)".
func (in Instance) String() string { return in.ID() + " (" + in.Arch + ")" }

// LookupError says why no instance was found, and what there is.
type LookupError struct {
	What      string
	Available []string
}

func (e *LookupError) Error() string {
	if len(e.Available) == 0 {
		return e.What
	}
	return fmt.Sprintf("%s; the catalog has: %s", e.What, strings.Join(e.Available, ", "))
}

// ForEdition returns the instance of kind that the catalog builds for an
// edition on arch (what `mage build:<edition>` builds with TARGET=<kind>).
func (c *Catalog) ForEdition(edition string, kind Kind, arch string) (Instance, error) {
	e := c.Edition(edition)
	if e == nil {
		return Instance{}, &LookupError{What: fmt.Sprintf("no edition %q", edition), Available: c.EditionNames()}
	}
	var found []Instance
	var kinds []string
	for _, in := range c.Instances() {
		if in.Edition != e || in.Arch != arch {
			continue
		}
		kinds = append(kinds, string(in.Kind()))
		if in.Kind() == kind {
			found = append(found, in)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Instance{}, &LookupError{What: fmt.Sprintf("edition %s has no %s artifact for %s", edition, kind, arch),
			Available: uniqueSorted(kinds)}
	}
	var ids []string
	for _, in := range found {
		ids = append(ids, in.ID())
	}
	return Instance{}, fmt.Errorf("edition %s has %d %s artifacts for %s (%s): build one by id (build:artifact)",
		edition, len(found), kind, arch, strings.Join(ids, ", "))
}

// ByID returns the instance with that id on arch (what `mage
// build:artifact <id>` builds).
func (c *Catalog) ByID(id, arch string) (Instance, error) {
	var ids []string
	for _, in := range c.Instances() {
		if in.ID() == id && in.Arch == arch {
			return in, nil
		}
		ids = append(ids, in.ID())
	}
	return Instance{}, &LookupError{What: fmt.Sprintf("no artifact %q for %s", id, arch), Available: uniqueSorted(ids)}
}

// IDs lists every instance id, sorted, once.
func (c *Catalog) IDs() []string {
	var ids []string
	for _, in := range c.Instances() {
		ids = append(ids, in.ID())
	}
	return uniqueSorted(ids)
}

// Shipped lists the instances a channel ships.
func (c *Catalog) Shipped(channel string) []Instance {
	var out []Instance
	for _, in := range c.Instances() {
		if slices.Contains(in.Artifact.Channels, channel) {
			out = append(out, in)
		}
	}
	return out
}

func uniqueSorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
