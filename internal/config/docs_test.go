package config_test

import (
	"flag"
	"os"
	"regexp"
	"testing"

	"github.com/socioprophet/sourceos/internal/config"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table")

// TestUpdateReadme rewrites the table with -update:
// go test ./internal/config -run TestUpdateReadme -update
func TestUpdateReadme(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the README table")
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)<!-- config:begin -->\n.*<!-- config:end -->`)
	out := re.ReplaceAllLiteral(b, []byte("<!-- config:begin -->\n"+config.MarkdownTable()+"<!-- config:end -->"))
	if err := os.WriteFile("../../README.md", out, 0o644); err != nil {
		t.Fatal(err)
	}
}
