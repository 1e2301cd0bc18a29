package catalog

import (
	"fmt"
	"regexp"
	"strings"
)

// CustomPrefix starts the name of every custom build's files. Release
// names come from the catalog; custom names never do, so no catalog can
// give a self-serve build the name of a release.
const CustomPrefix = "sourceos-custom-"

// customIDRE is a user or build id as it may appear in a custom name: the
// safe path segment the lanes require of them.
var customIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// maxCustomName keeps a custom name, with the longest suffix a sidecar
// adds, within a file name's 255 bytes.
const maxCustomName = 200

// CustomName is the base name of a custom build's files: it says custom
// and carries the edition, the architecture, the user and the build, e.g.
// sourceos-custom-server-x86_64-user-7-build-42. An ISO is <base>.iso; a
// netboot set <base>-kernel, <base>-initrd and <base>.ipxe.
func CustomName(edition, arch, uid, buildID string) (string, error) {
	for what, id := range map[string]string{"user id": uid, "build id": buildID} {
		if !customIDRE.MatchString(id) {
			return "", fmt.Errorf("custom build name: %s %q is not a safe path segment ([A-Za-z0-9][A-Za-z0-9._-]{0,127})", what, id)
		}
	}
	name := CustomPrefix + strings.Join([]string{edition, arch, uid, buildID}, "-")
	if len(name) > maxCustomName {
		return "", fmt.Errorf("custom build name %q is longer than %d bytes: shorten the user or build id", name, maxCustomName)
	}
	return name, nil
}

// IsCustomName reports whether a file name is a custom build's.
func IsCustomName(name string) bool { return strings.HasPrefix(name, CustomPrefix) }

// FileExt is the extension of a kind's single file ("" for a netboot set,
// whose files are named from a base).
func FileExt(k Kind) string {
	switch k {
	case ISO:
		return ".iso"
	case QCOW2:
		return ".qcow2"
	case GCE:
		return ".tar.gz"
	}
	return ""
}
