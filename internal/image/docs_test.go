package image

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// docs/building.md's step table and its sample phase line are the steps
// Steps gives a release image of the catalog (the desktop ISO: with a
// system attribute, the longest list), in order and by the names the
// pipeline prints; step numbers appear nowhere else on the page, since
// they depend on the kind of artifact.
func TestBuildingDocListsTheSteps(t *testing.T) {
	in, err := testrig.RepoCatalog(t).ForEdition("desktop", catalog.ISO, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if in.SystemAttr() == "" {
		t.Fatal("the desktop ISO has no system attribute: pick an instance with the longest step list")
	}
	var want []string
	for _, s := range Steps(Request{Instance: in, Flake: "."}) {
		want = append(want, fmt.Sprint(s))
	}
	raw, err := os.ReadFile(filepath.Join(testrig.RepoRoot(t), "docs", "building.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)

	row := regexp.MustCompile(`(?m)^\| (\d+) \| ([^|]+) \| `)
	var got []string
	for i, m := range row.FindAllStringSubmatch(page, -1) {
		if n, _ := strconv.Atoi(m[1]); n != i+1 {
			t.Errorf("table row %d is numbered %s", i+1, m[1])
		}
		got = append(got, strings.TrimSpace(m[2]))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/building.md lists the steps\n\t%q\nthe pipeline runs\n\t%q", got, want)
	}

	phase := regexp.MustCompile("`==> \\[(\\d+)/(\\d+)\\] ([^`]+)`").FindAllStringSubmatch(page, -1)
	if len(phase) == 0 {
		t.Error("no sample phase line")
	}
	for _, m := range phase {
		i, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if n != len(want) || i < 1 || i > n || want[i-1] != m[3] {
			t.Errorf("sample phase line %q: the pipeline prints step %d of %d as %q", m[0], i, len(want), at(want, i-1))
		}
	}
	if m := regexp.MustCompile(`(?i)\bsteps? \d+\b`).FindString(page); m != "" {
		t.Errorf("%q: name a step, not its number (numbers depend on the artifact's kind)", m)
	}
}

func at(xs []string, i int) string {
	if i < 0 || i >= len(xs) {
		return "(none)"
	}
	return xs[i]
}
