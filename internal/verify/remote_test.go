package verify_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
	"github.com/socioprophet/sourceos/internal/verify/gcsobject"
)

const bucket = "sourceos-releases"

// publish signs an ISO and uploads it with every sidecar to the emulator
// under prefix; it returns the local copy's path.
func publish(t *testing.T, g *testrig.GCS, k attesttest.Keys, prefix string) string {
	t.Helper()
	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 3<<20)
	attesttest.SignISO(t, k, iso)
	c := g.Client(t)
	for _, name := range attesttest.ListDir(t, filepath.Dir(iso)) {
		w := c.Bucket(bucket).Object(prefix + name).NewWriter(context.Background())
		if _, err := w.Write(attesttest.ReadFile(t, filepath.Join(filepath.Dir(iso), name))); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return iso
}

// upload replaces one object.
func upload(t *testing.T, g *testrig.GCS, object string, data []byte) {
	t.Helper()
	w := g.Client(t).Bucket(bucket).Object(object).NewWriter(context.Background())
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func runURL(t *testing.T, url, pub, keep string, progress *bytes.Buffer) (string, error) {
	t.Helper()
	var out bytes.Buffer
	gcs := gcsobject.New()
	defer gcs.Close()
	o := verify.RunOptions{VerifyOptions: verify.VerifyOptions{Artifact: url, PublicKey: pub}, Out: &out, KeepDir: keep, GCS: gcs}
	if progress != nil {
		o.Progress = progress
	}
	err := verify.Run(context.Background(), o)
	return out.String(), err
}

// A release verified where it lies, by its public URL and by gs://: the
// same checks as on a local copy; the artifact and its sidecars are kept
// in the keep directory once they verify, byte for byte what was
// published.
func TestVerifyURL(t *testing.T) {
	g := testrig.StartGCS(t, bucket)
	k := attesttest.NewKeys(t)
	iso := publish(t, g, k, "desktop/1.2.3/")
	for name, url := range map[string]string{
		"public URL": g.URL(bucket, "desktop/1.2.3/"+attesttest.ISOName),
		"gs URL":     "gs://" + bucket + "/desktop/1.2.3/" + attesttest.ISOName,
	} {
		t.Run(name, func(t *testing.T) {
			keep := filepath.Join(t.TempDir(), "out")
			var progress bytes.Buffer
			out, err := runURL(t, url, k.Pub(), keep, &progress)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.HasPrefix(out, url+" (sha256 ") || !strings.Contains(out, "\nOK\n") || !strings.Contains(out, "kept in "+filepath.Join(keep, attesttest.ISOName)) {
				t.Errorf("report:\n%s", out)
			}
			got := attesttest.ListDir(t, keep)
			if len(got) != 1+len(attesttest.AllSidecars) {
				t.Errorf("kept %v", got)
			}
			for _, f := range got {
				if !bytes.Equal(attesttest.ReadFile(t, filepath.Join(keep, f)), attesttest.ReadFile(t, filepath.Join(filepath.Dir(iso), f))) {
					t.Errorf("%s differs from what was published", f)
				}
			}
			if !strings.Contains(progress.String(), attesttest.ISOName+": 3 of 3 MiB (100%)") {
				t.Errorf("progress: %q", progress.String())
			}
		})
	}
}

// What fails to verify, or cannot be, leaves nothing behind; exit codes
// are those of a local verification.
func TestVerifyURLKeepsNothingOnFailure(t *testing.T) {
	g := testrig.StartGCS(t, bucket)
	k := attesttest.NewKeys(t)
	iso := publish(t, g, k, "r/")
	tampered := attesttest.ReadFile(t, iso)
	tampered[100] ^= 1
	upload(t, g, "r/tampered.iso", tampered)
	for _, ext := range attesttest.AllSidecars {
		upload(t, g, "r/tampered.iso"+ext, attesttest.ReadFile(t, iso+ext))
	}
	upload(t, g, "r/big.iso", attesttest.ReadFile(t, iso))
	upload(t, g, "r/big.iso.minisig", bytes.Repeat([]byte("x"), sidecar.MaxMinisigSize+1))
	for _, tc := range []struct {
		name, url string
		exit      int
		want      string
	}{
		{"tampered artifact", g.URL(bucket, "r/tampered.iso"), verify.ExitFailed, verify.CheckMinisig},
		{"sidecar over its limit", g.URL(bucket, "r/big.iso"), verify.ExitCannotVerify, "big.iso.minisig is too large"},
		{"missing artifact", g.URL(bucket, "r/missing.iso"), verify.ExitCannotVerify, "missing.iso"},
		{"missing artifact, gs", "gs://" + bucket + "/r/missing.iso", verify.ExitCannotVerify, "missing.iso"},
		{"wrong key", g.URL(bucket, "r/"+attesttest.ISOName), verify.ExitFailed, verify.CheckDSSESignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep := t.TempDir()
			pub := k.Pub()
			if tc.name == "wrong key" {
				pub = attesttest.NewKeys(t).Pub()
			}
			out, err := runURL(t, tc.url, pub, keep, nil)
			if verify.ExitCode(err) != tc.exit || !strings.Contains(out+err.Error(), tc.want) {
				t.Errorf("exit %d (%v), want %d mentioning %q\n%s", verify.ExitCode(err), err, tc.exit, tc.want, out)
			}
			if got := attesttest.ListDir(t, keep); len(got) != 0 {
				t.Errorf("left behind: %v", got)
			}
			if entries, _ := os.ReadDir(keep); len(entries) != 0 {
				t.Errorf("left a directory behind: %v", entries)
			}
		})
	}
}

// The artifact is bounded too: one larger than the limit is refused, by
// its announced size or while it downloads.
func TestVerifyURLBoundsTheArtifact(t *testing.T) {
	g := testrig.StartGCS(t, bucket)
	k := attesttest.NewKeys(t)
	publish(t, g, k, "r/")
	keep := t.TempDir()
	_, err := verify.VerifyURL(context.Background(), verify.VerifyOptions{Artifact: g.URL(bucket, "r/"+attesttest.ISOName), PublicKey: k.Pub()},
		verify.URLOptions{KeepDir: keep, MaxArtifactSize: 1 << 20})
	var tooLarge *sidecar.TooLargeError
	if verify.ExitCode(err) != verify.ExitCannotVerify || !errors.As(err, &tooLarge) {
		t.Errorf("3 MiB artifact with a 1 MiB limit: %v", err)
	}
	if got := attesttest.ListDir(t, keep); len(got) != 0 {
		t.Errorf("left behind: %v", got)
	}
}

// Only https, gs and http to this machine are fetched from; a URL with
// credentials, a query or no file name is refused before any request.
func TestVerifyURLRefusesUnsafeURLs(t *testing.T) {
	for _, u := range []string{
		"http://example.com/a.iso", "https://user:pw@example.com/a.iso", "https://example.com/a.iso?sig=x",
		"https://example.com/", "gs://bucket/", "https://example.com/a.iso#frag", "ftp://example.com/a.iso", "https://example.com/..",
	} {
		_, err := verify.VerifyURL(context.Background(), verify.VerifyOptions{Artifact: u, PublicKey: attesttest.NewKeys(t).Pub()},
			verify.URLOptions{KeepDir: t.TempDir()})
		if !errors.Is(err, verify.ErrURL) || verify.ExitCode(err) != verify.ExitCannotVerify {
			t.Errorf("%s: %v", u, err)
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// A redirect to another scheme is refused (https must not become http;
// here http to https, the only way round a loopback server can show), and
// no request carries credentials of any kind.
func TestVerifyURLRefusesSchemeRedirects(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	_, err := verify.VerifyURL(context.Background(), verify.VerifyOptions{Artifact: srv.URL + "/r/a.iso", PublicKey: attesttest.NewKeys(t).Pub()},
		verify.URLOptions{KeepDir: t.TempDir()})
	if !errors.Is(err, verify.ErrRedirect) || verify.ExitCode(err) != verify.ExitCannotVerify {
		t.Errorf("redirect to https: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("no request reached the server")
	}
	for _, h := range seen {
		if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
			t.Errorf("credentials sent: %v", h)
		}
	}
}

// A netboot manifest verified by URL fetches the files it lists, so the
// set is checked as it is locally; a changed file fails, and nothing is
// kept.
func TestVerifyURLNetbootSet(t *testing.T) {
	g := testrig.StartGCS(t, bucket)
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	var arts []sidecar.Artifact
	for _, p := range attesttest.NetbootSet(t, dir, attesttest.BuildInfo("netboot")) {
		arts = append(arts, sidecar.Artifact{Path: p})
	}
	if _, err := attest.Sign(context.Background(), attest.SignOptions{Kind: sidecar.Netboot, Artifacts: arts,
		Build: attesttest.BuildInfo("netboot"), SecretKey: k.Secret(), Now: attesttest.Clock}); err != nil {
		t.Fatal(err)
	}
	for _, name := range attesttest.ListDir(t, dir) {
		upload(t, g, "n/"+name, attesttest.ReadFile(t, filepath.Join(dir, name)))
	}
	keep := t.TempDir()
	url := g.URL(bucket, "n/"+sidecar.ManifestName)
	out, err := runURL(t, url, k.Pub(), keep, nil)
	if err != nil || !strings.Contains(out, "PASS  "+verify.CheckNetbootSet) {
		t.Fatalf("%v\n%s", err, out)
	}
	kept := attesttest.ListDir(t, keep)
	for _, a := range arts {
		if !slices.Contains(kept, filepath.Base(a.Path)) {
			t.Errorf("%s not kept: %v", filepath.Base(a.Path), kept)
		}
	}

	changed := attesttest.ReadFile(t, arts[1].Path)
	changed[0] ^= 1
	upload(t, g, "n/"+filepath.Base(arts[1].Path), changed)
	keep = t.TempDir()
	out, err = runURL(t, url, k.Pub(), keep, nil)
	if verify.ExitCode(err) != verify.ExitFailed || !strings.Contains(out, "FAIL  "+verify.CheckNetbootSet) {
		t.Errorf("changed %s: exit %d\n%s", filepath.Base(arts[1].Path), verify.ExitCode(err), out)
	}
	if got := attesttest.ListDir(t, keep); len(got) != 0 {
		t.Errorf("kept %v", got)
	}
}

// A URL whose envelope is not signed by the key is refused before the
// artifact is fetched: nothing large is downloaded on the word of a
// sidecar anyone could have written.
func TestVerifyURLFetchesNothingLargeUnsigned(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 1<<20)
	attesttest.SignISO(t, k, iso)
	other := attesttest.NewKeys(t) // the envelope verifies with another key only
	var mu sync.Mutex
	served := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[filepath.Base(r.URL.Path)]++
		mu.Unlock()
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.URL.Path)))
	}))
	defer srv.Close()
	_, err := runURL(t, srv.URL+"/"+attesttest.ISOName, other.Pub(), t.TempDir(), nil)
	if verify.ExitCode(err) != verify.ExitFailed {
		t.Fatalf("exit %d (%v), want 1", verify.ExitCode(err), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if served[attesttest.ISOName] != 0 {
		t.Errorf("the artifact was fetched %d times under an envelope that does not verify", served[attesttest.ISOName])
	}
	if served[attesttest.ISOName+".intoto.dsse.json"] == 0 {
		t.Error("the envelope was not fetched: the test does not test what it says")
	}
}
