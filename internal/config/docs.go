package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// MarkdownTable renders Vars as docs/configuration.md's table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Group | Default | Secret | Meaning |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, v := range Vars {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		sec := ""
		if v.Secret {
			sec = "yes (also `" + v.Name + "_FILE`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", v.Name, v.Group, def, sec, v.Description)
	}
	return b.String()
}

// Show writes the effective configuration, secrets redacted.
func (c *Config) Show(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tSOURCE")
	for _, e := range c.Effective() {
		val := e.Value
		if val == "" {
			val = "(unset)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, val, e.Source)
	}
	return tw.Flush()
}
