package image_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestFlakeCheckWithRealNix(t *testing.T) {
	r := newRig(t)
	if err := image.FlakeCheck(context.Background(), r.deps()); err != nil {
		t.Fatalf("flake check of the fixture flake: %v\n%s", err, r.log.String())
	}
	dir := testrig.FixtureFlakeCopy(t)
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = { self }: { packages = 1; }"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.env["SOURCEOS_FLAKE"] = dir
	err := image.FlakeCheck(context.Background(), r.deps())
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("broken flake passed: %v", err)
	}
}
