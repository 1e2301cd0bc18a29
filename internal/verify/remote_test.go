package verify_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

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
// credentials, a query or no file name, or an https URL naming an address
// that is not public, is refused before any request.
func TestVerifyURLRefusesUnsafeURLs(t *testing.T) {
	for _, u := range []string{
		"http://example.com/a.iso", "https://user:pw@example.com/a.iso", "https://example.com/a.iso?sig=x",
		"https://example.com/", "gs://bucket/", "https://example.com/a.iso#frag", "ftp://example.com/a.iso", "https://example.com/..",
		"https://example.com/a.iso?", "https://127.0.0.1/a.iso", "https://[::1]/a.iso", "https://169.254.169.254/a.iso", "https://10.0.0.8/a.iso",
		"http://0.0.0.0:8080/a.iso", "http://192.168.1.10/a.iso",
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
	if _, err := attest.Write(context.Background(), attest.Options{Kind: sidecar.Netboot, Artifacts: arts,
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

// localAddress is an address of this machine that is not loopback (a LAN
// or container address), to stand for "another host"; it skips the test
// when there is none.
func localAddress(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var found []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			found = append(found, p.Addr())
		}
	}
	slices.SortFunc(found, func(a, b netip.Addr) int { return b.BitLen() - a.BitLen() }) // IPv4 first
	if len(found) == 0 {
		t.Skip("this machine has no address but loopback")
	}
	return found[len(found)-1]
}

// countingServer serves the files in dir on every address of this
// machine and counts the requests it answers.
func countingServer(t *testing.T, dir string) (port string, served func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.URL.Path)))
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// redirector answers every request with a redirect to to(path).
func redirector(t *testing.T, to func(path string) string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to(r.URL.Path), http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A loopback mirror (http) may redirect to this machine only: not to a
// LAN address (whose server would serve the release), a public host or
// the metadata server; another loopback mirror is fine. Redirects are
// bounded.
func TestVerifyURLHoldsRedirectsToTheFirstHostRule(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	attesttest.SignISO(t, k, attesttest.Artifact(t, dir, attesttest.ISOName, 4096))
	port, served := countingServer(t, dir)
	lan := net.JoinHostPort(localAddress(t).String(), port)
	for _, tc := range []struct {
		name string
		to   func(path string) string
		ok   bool
	}{
		{"to another loopback mirror", func(p string) string { return "http://127.0.0.1:" + port + p }, true},
		{"to a LAN address of this machine", func(p string) string { return "http://" + lan + p }, false},
		{"to a public host", func(p string) string { return "http://mirror.example" + p }, false},
		{"to the metadata server", func(string) string { return "http://169.254.169.254/computeMetadata/v1/" }, false},
		{"to localhost over https", func(p string) string { return "https://localhost:" + port + p }, false},
		{"to itself, for ever", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := served()
			var url string
			if tc.to == nil {
				url = redirector(t, func(p string) string { return p }) + "/r/" + attesttest.ISOName
			} else {
				url = redirector(t, tc.to) + "/r/" + attesttest.ISOName
			}
			keep := t.TempDir()
			rep, err := verify.VerifyURL(context.Background(), verify.VerifyOptions{Artifact: url, PublicKey: k.Pub()},
				verify.URLOptions{KeepDir: keep, Limits: verify.Limits{Header: 5 * time.Second}})
			if tc.ok {
				if err != nil || served() == before {
					t.Fatalf("%v (%d served)\n%s", err, served()-before, attesttest.ReportText(rep))
				}
				return
			}
			if !errors.Is(err, verify.ErrRedirect) || verify.ExitCode(err) != verify.ExitCannotVerify {
				t.Errorf("exit %d: %v, want a refused redirect", verify.ExitCode(err), err)
			}
			if n := served() - before; n != 0 {
				t.Errorf("the redirect was followed: %d requests served", n)
			}
			if entries, _ := os.ReadDir(keep); len(entries) != 0 {
				t.Errorf("left in OUT: %v", entries)
			}
		})
	}
}

// An https URL never reaches this machine or its networks, named by an
// address or by a name that resolves to one (localhost here; any DNS name
// alike): the address dialled is checked, so not even a connection is
// made.
func TestVerifyURLHTTPSReachesNoLocalAddress(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	hosts := []string{"127.0.0.1", "localhost", "::ffff:127.0.0.1"}
	if a := localAddress(t); verify.CheckAddr(true, a.String()) != nil { // a private, ULA or reserved address
		hosts = append(hosts, a.String())
	}
	for _, h := range hosts {
		url := "https://" + net.JoinHostPort(h, port) + "/r/" + attesttest.ISOName
		_, err := verify.VerifyURL(context.Background(), verify.VerifyOptions{Artifact: url, PublicKey: attesttest.NewKeys(t).Pub()},
			verify.URLOptions{KeepDir: t.TempDir(), Limits: verify.Limits{Header: 5 * time.Second}})
		if !errors.Is(err, verify.ErrAddress) || verify.ExitCode(err) != verify.ExitCannotVerify {
			t.Errorf("%s: exit %d: %v, want the address refused", url, verify.ExitCode(err), err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections made to this machine", n)
	}
}

// printableText fails the test when s holds anything a terminal would
// act on: a control character (ESC, CSI, a newline), a bidi override or
// another format character, invalid UTF-8.
func printableText(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s is not valid UTF-8: %q", what, s)
	}
	for _, r := range strings.TrimSuffix(s, "\n") {
		if !unicode.IsPrint(r) && r != '\n' {
			t.Errorf("%s holds %U: %q", what, r, s)
			return
		}
	}
}

// A URL whose file name is not a plain file name is refused before any
// request: terminal escapes, bidi overrides, newlines, NUL, a separator,
// a hidden or over-long name never reach OUT, and the error and the report
// quote them escaped.
func TestVerifyURLRefusesUnsafeFileNames(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	for _, name := range []string{
		"%1b%5b2J%1b%5bH.iso", "%1b]8;;https:%2f%2fevil%1b%5c.iso", "a%0aOK.iso", "a%0d.iso", "a%00.iso", "a%09.iso",
		"a%e2%80%aeosi.iso", "a\u202eosi.iso", "a%c2%9b31m.iso", "a\u009b31m.iso", "a%e2%80%a8.iso", "a%ff.iso",
		"a%5c..%5cb.iso", "%2e%2e", ".hidden.iso", strings.Repeat("a", 201) + ".iso",
	} {
		url := srv.URL + "/r/" + name
		keep := t.TempDir()
		out, err := runURL(t, url, attesttest.NewKeys(t).Pub(), keep, nil)
		if !errors.Is(err, verify.ErrURL) || verify.ExitCode(err) != verify.ExitCannotVerify {
			t.Errorf("%q: exit %d: %v, want the URL refused", name, verify.ExitCode(err), err)
			continue
		}
		printableText(t, "the error", err.Error())
		printableText(t, "the report", out)
		if entries, _ := os.ReadDir(keep); len(entries) != 0 {
			t.Errorf("%q: left in OUT: %v", name, entries)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests made for names that are refused", n)
	}
	// What else of a URL an error quotes is escaped too.
	_, err := runURL(t, "https://mirror.example/a.iso?\u009b31m\u202e", attesttest.NewKeys(t).Pub(), t.TempDir(), nil)
	if !errors.Is(err, verify.ErrURL) {
		t.Fatal(err)
	}
	printableText(t, "the error", err.Error())
}

// The report, as text and as JSON, and the errors escape what is not
// printable: the artifact's name and what sidecars say reach a terminal.
func TestReportAndErrorsArePrintable(t *testing.T) {
	rep := &verify.Report{Artifact: "https://m.example/\x1b[2Ja\u202eosi.iso", Error: "x\x9b31m",
		Checks: []verify.Check{{Name: verify.CheckCommentFile, Status: verify.Fail, Detail: "file:a.iso\n\x1b]0;title\x07"}}}
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	printableText(t, "the text report", strings.ReplaceAll(text.String(), "\n", " "))
	printableText(t, "the JSON report", strings.ReplaceAll(js.String(), "\n", " "))
	if !strings.Contains(text.String(), `\x1b[2Ja\u202eosi.iso`) {
		t.Errorf("the name is not shown escaped:\n%s", text.String())
	}
	err := &verify.CannotVerifyError{Err: errors.New("fetch a\x1b[31m\u2028b: \u2066x")}
	printableText(t, "the error", err.Error())
	printableText(t, "the progress line", strings.TrimPrefix(verify.ProgressLine("a\x1b[2J\u202e.iso"), "\r"))
}
