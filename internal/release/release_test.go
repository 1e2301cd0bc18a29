package release_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/release"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

// A release as users download it: every artifact verified first; files
// GitHub does not take (here anything of 6 KiB or more) go to the bucket
// with their sidecars and the notes link them; SHA256SUMS covers every file
// wherever it is, and sha256sum and minisign alone check it.
func TestPrepareSplitsByWhatGitHubTakes(t *testing.T) {
	minisign := testrig.RequireTool(t, "minisign")
	sha256sum := testrig.RequireTool(t, "sha256sum")
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	small := attesttest.Artifact(t, dir, "sourceos-server-x86_64.iso", 4096)
	big := attesttest.Artifact(t, dir, "sourceos-desktop-x86_64.iso", 8192)
	for _, p := range []string{small, big} {
		attesttest.SignISO(t, k, p)
	}
	bucket := t.TempDir()
	plan, err := release.Prepare(context.Background(), release.Options{Dir: dir, Tag: "v1.2.3", PublicKey: k.Pub(),
		SecretKey: k.Secret(), GCSPrefix: bucket, Limit: 6 << 10, Now: attesttest.Clock})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.InBucket, []string{"sourceos-desktop-x86_64.iso"}) || len(plan.Artifacts) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	assets := attesttest.ListDir(t, plan.AssetsDir)
	for _, want := range []string{"SHA256SUMS", "SHA256SUMS.minisig", "sourceos-server-x86_64.iso", "sourceos-server-x86_64.iso.minisig", "sourceos-desktop-x86_64.iso.minisig"} {
		if !slices.Contains(assets, want) {
			t.Errorf("assets lack %s: %v", want, assets)
		}
	}
	if slices.Contains(assets, "sourceos-desktop-x86_64.iso") {
		t.Errorf("an oversize file is among the GitHub assets: %v", assets)
	}
	inBucket := attesttest.ListDir(t, bucket)
	for _, want := range []string{"sourceos-desktop-x86_64.iso", "sourceos-desktop-x86_64.iso.intoto.dsse.json", "SHA256SUMS", "SHA256SUMS.minisig"} {
		if !slices.Contains(inBucket, want) {
			t.Errorf("bucket lacks %s: %v", want, inBucket)
		}
	}
	notes, _ := os.ReadFile(plan.Notes)
	if !strings.Contains(string(notes), "sourceos-desktop-x86_64.iso") || !strings.Contains(string(notes), "artifacts bucket") ||
		!strings.Contains(string(notes), "minisign -Vm SHA256SUMS -P RW") {
		t.Errorf("notes:\n%s", notes)
	}

	// A user: the GitHub assets and the file from the bucket, checked with
	// the two tools alone.
	user := t.TempDir()
	for _, n := range assets {
		copyFile(t, filepath.Join(plan.AssetsDir, n), filepath.Join(user, n))
	}
	copyFile(t, filepath.Join(bucket, "sourceos-desktop-x86_64.iso"), filepath.Join(user, "sourceos-desktop-x86_64.iso"))
	run(t, user, minisign, "-V", "-m", "SHA256SUMS", "-P", strings.TrimSpace(k.Pub()))
	run(t, user, sha256sum, "-c", "SHA256SUMS")
	attesttest.FlipByte(t, filepath.Join(user, "sourceos-desktop-x86_64.iso"), 100)
	if out, err := exec.Command(sha256sum, "-c", "--quiet", "SHA256SUMS").CombinedOutput(); err == nil {
		t.Errorf("sha256sum accepted a tampered file: %s", out)
	}
}

// Nothing is published when an artifact does not verify, or when an
// oversize file has nowhere to go.
func TestPrepareRefusesBeforeUploading(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, "sourceos-server-x86_64.iso", 8192)
	attesttest.SignISO(t, k, iso)
	opts := release.Options{Dir: dir, Tag: "v1", PublicKey: k.Pub(), SecretKey: k.Secret(), Limit: 6 << 10}
	if _, err := release.Prepare(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "GCS_PREFIX is not set") {
		t.Errorf("oversize without a bucket: %v", err)
	}
	opts.GCSPrefix = t.TempDir()
	attesttest.FlipByte(t, iso, 10)
	var failed *verify.FailedError
	_, err := release.Prepare(context.Background(), opts)
	if !errors.As(err, &failed) {
		t.Errorf("tampered artifact: %v", err)
	}
	if got := attesttest.ListDir(t, opts.GCSPrefix); len(got) != 0 {
		t.Errorf("published %v", got)
	}
	opts.SecretKey = config.Secret{}
	if _, err := release.Prepare(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "must be signed") {
		t.Errorf("unsigned sums: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
