package spec

import (
	_ "embed"
	"strings"
)

// systemUsersText lists the account names a spec user may not take (see
// the file's header for where they come from).
//
//go:embed systemusers.txt
var systemUsersText string

// systemUsers is systemUsersText as a set.
var systemUsers = parseNameList(systemUsersText)

// parseNameList reads whitespace-separated names, skipping # comments.
func parseNameList(text string) map[string]bool {
	set := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, name := range strings.Fields(line) {
			set[name] = true
		}
	}
	return set
}

// IsSystemAccount reports whether name is an account a NixOS 25.05 system
// or its installer has or may declare, which a spec user may not take.
func IsSystemAccount(name string) bool { return systemUsers[name] }
