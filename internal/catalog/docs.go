package catalog

import (
	"fmt"
	"strings"
)

// MarkdownTables renders the catalog as the tables of docs/catalog.md:
// its editions, then its artifacts.
func (c *Catalog) MarkdownTables() string {
	var b strings.Builder
	b.WriteString("| Edition | What it is | Module | OSImage host profile | Host name | Capabilities | Custom builds |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, e := range c.Editions {
		fmt.Fprintf(&b, "| `%s` | %s | `nixosModules.%s` | `%s` | `%s` | %s | %s |\n", e.Name, e.Description, e.Module,
			e.HostProfile, e.Hostname, code(e.Capabilities), yesNo(e.Custom))
	}
	b.WriteString("\n| Artifact | Kind | What it is | Editions | Arches | Flake attribute | File | Channels |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, a := range c.Artifacts {
		editions := code(a.Editions)
		if len(a.Editions) == 0 {
			editions = "— (`" + a.HostProfile + "`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | `%s` | `%s` | %s |\n", a.Name, a.Kind, a.Description, editions,
			code(a.Arches), a.Attribute, a.File, code(a.Channels))
	}
	return b.String()
}

func code(list []string) string {
	if len(list) == 0 {
		return "—"
	}
	return "`" + strings.Join(list, "`, `") + "`"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
