package verify_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/verify"
)

const shellSetting = "SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE"

func allowShell(o *verify.VerifyOptions) { o.AllowShellBundle = true }

// shellChecks are the checks a shell bundle gets, in order.
var shellChecks = []string{verify.CheckShellBundle, verify.CheckShellMinisigKey, verify.CheckShellMinisigPrehashed,
	verify.CheckShellMinisig, verify.CheckShellTrustedComment, verify.CheckShellCommentForm,
	verify.CheckShellStatement, verify.CheckShellSubject, verify.CheckShellSHA256File}

// An old bundle is refused by default, before its image is read, with an
// error that names the setting which accepts it: exit 2, could not verify
// (nothing contradicts the image; the bundle lacks what a verification
// needs).
func TestShellBundleRefusedByDefault(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 4096)
	rep, err := attesttest.Verify(t, iso, k.Pub())
	var cannot *verify.CannotVerifyError
	if !errors.As(err, &cannot) || verify.ExitCode(err) != verify.ExitCannotVerify || rep.OK {
		t.Fatalf("err = %v (exit %d), want could not verify\n%s", err, verify.ExitCode(err), attesttest.ReportText(rep))
	}
	if !errors.Is(err, verify.ErrShellBundle) || !strings.Contains(err.Error(), shellSetting+"=1") {
		t.Errorf("the error does not say what the bundle is and which setting accepts it: %v", err)
	}
	if len(rep.Checks) != 1 || rep.Checks[0].Name != verify.CheckShellBundle || rep.Checks[0].Status != verify.Error ||
		!strings.Contains(rep.Checks[0].Detail, shellSetting) || rep.SHA256 != "" || rep.ShellBundle != nil {
		t.Errorf("report:\n%s", attesttest.ReportText(rep))
	}

	// The legacy-signature setting is another one: it does not accept it.
	_, err = attesttest.Verify(t, iso, k.Pub(), func(o *verify.VerifyOptions) { o.AllowLegacy = true })
	if !errors.Is(err, verify.ErrShellBundle) {
		t.Errorf("SOURCEOS_VERIFY_ALLOW_LEGACY accepted a shell bundle: %v", err)
	}
}

// With the setting, an old bundle verifies: its minisign signature, its
// trusted comment (the old form, which names no file), the subject digest
// of its unsigned statement and its .sha256; the report says what it
// lacks and prints what the statement claims as unverified.
func TestShellBundleVerifiesWithTheSetting(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 3*digest.BlockSize+11)
	attesttest.MinisignVerify(t, iso, k.Pub()) // the fixture is what minisign signs and checks
	rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
	if err != nil || !rep.OK || verify.ExitCode(err) != verify.ExitOK {
		t.Fatalf("err = %v\n%s", err, attesttest.ReportText(rep))
	}
	if len(rep.Checks) != len(shellChecks) {
		t.Errorf("%d checks, want %d\n%s", len(rep.Checks), len(shellChecks), attesttest.ReportText(rep))
	}
	for i, c := range rep.Checks {
		if i < len(shellChecks) && c.Name != shellChecks[i] || c.Status != verify.Pass {
			t.Errorf("check %d: %+v", i, c)
		}
	}
	if rep.Builder != nil {
		t.Errorf("a builder reported as if signed: %+v", rep.Builder)
	}
	sb := rep.ShellBundle
	if sb == nil || sb.SignedID != "desktop-x86_64-run-42-a" {
		t.Fatalf("shell bundle: %+v", sb)
	}
	text := attesttest.ReportText(rep)
	for _, want := range []string{
		"no DSSE envelope", "unsigned provenance", "unbound OSImage document", "file name not bound",
		"unverified claims", "builder: sourceos/build-custom-image", "commit: 0123456789abcdef0123456789abcdef01234567",
		"signed id desktop-x86_64-run-42-a", "\nOK as a shell bundle: its guarantees are the weaker ones above\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the report does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "built by") {
		t.Errorf("the report states a builder as a fact:\n%s", text)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil || !bytes.Contains(js.Bytes(), []byte(`"lacks": [`)) || !bytes.Contains(js.Bytes(), []byte(`"unverifiedClaims": [`)) {
		t.Errorf("JSON report: %v\n%s", err, js.String())
	}

	t.Run("without .sha256", func(t *testing.T) {
		remove(t, iso+".sha256")
		rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
		if err != nil || attesttest.Status(rep, verify.CheckShellSHA256File) != verify.Skip {
			t.Errorf("err = %v\n%s", err, attesttest.ReportText(rep))
		}
	})
	t.Run("legacy Ed signature, both settings", func(t *testing.T) {
		oldSign(t, k, iso, "desktop-x86_64-run-42-a", "", true)
		rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
		if attesttest.Status(rep, verify.CheckShellMinisigPrehashed) != verify.Fail || !strings.Contains(err.Error(), verify.CheckShellMinisigPrehashed) {
			t.Errorf("a legacy signature without SOURCEOS_VERIFY_ALLOW_LEGACY: %v\n%s", err, attesttest.ReportText(rep))
		}
		rep, err = attesttest.Verify(t, iso, k.Pub(), allowShell, func(o *verify.VerifyOptions) { o.AllowLegacy = true })
		if err != nil {
			t.Errorf("both settings: %v\n%s", err, attesttest.ReportText(rep))
		}
	})
}

// The kernel of an old netboot set verifies: its statement names the
// kernel and the initrd.
func TestShellBundleNetbootKernel(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	b := oldDesktop()
	b.Target = "netboot"
	for _, f := range []string{"kernel", "initrd"} {
		oldSign(t, k, attesttest.Artifact(t, dir, f, 2048), b.localID(), "", false)
	}
	writeDocs(t, dir, oldDocuments(t, b, dir, []string{"kernel", "initrd"}, true))
	rep, err := attesttest.Verify(t, filepath.Join(dir, "kernel"), k.Pub(), allowShell)
	if err != nil || attesttest.Status(rep, verify.CheckShellSHA256File) != verify.Skip {
		t.Errorf("kernel: %v\n%s", err, attesttest.ReportText(rep))
	}
}

// Tampering is refused with the setting on: exit 1, the check that
// caught it failed.
func TestShellBundleTamperingRefused(t *testing.T) {
	k := attesttest.NewKeys(t)
	other := attesttest.NewKeys(t)
	id := oldDesktop().localID()
	editStatement := func(f func(m map[string]any)) func(t *testing.T, iso string) {
		return func(t *testing.T, iso string) { editJSON(t, iso+".intoto.json", f) }
	}
	subject := func(m map[string]any) map[string]any { return asSlice(m["subject"])[0].(map[string]any) }
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, iso string)
		want   string
	}{
		{"flipped image byte", func(t *testing.T, iso string) { attesttest.FlipByte(t, iso, 1000) }, verify.CheckShellMinisig},
		{"changed subject digest", editStatement(func(m map[string]any) {
			member(subject(m), "digest")["sha256"] = strings.Repeat("0", 64)
		}), verify.CheckShellSubject},
		{"subject names another file", editStatement(func(m map[string]any) {
			subject(m)["name"] = "sourceos-server-x86_64-custom.iso"
		}), verify.CheckShellSubject},
		{".minisig from another key", func(t *testing.T, iso string) { oldSign(t, other, iso, id, "", false) }, verify.CheckShellMinisigKey},
		{"trusted comment with an escape", func(t *testing.T, iso string) {
			oldSign(t, k, iso, id, "sourceos:"+id+"\x1b[2J", false)
		}, verify.CheckShellTrustedComment},
		{"trusted comment with a tab", func(t *testing.T, iso string) {
			oldSign(t, k, iso, id, "sourceos:"+id+"\tfile:other.iso", false)
		}, verify.CheckShellCommentForm},
		{"trusted comment of 256 bytes", func(t *testing.T, iso string) {
			oldSign(t, k, iso, id, "sourceos:"+strings.Repeat("a", 256), false)
		}, verify.CheckShellCommentForm},
		{"trusted comment with a newline", func(t *testing.T, iso string) {
			// minisign refuses to sign one; written into the file, it
			// breaks the format.
			b := attesttest.ReadFile(t, iso+".minisig")
			attesttest.WriteFile(t, iso+".minisig", bytes.Replace(b, []byte("sourceos:"+id), []byte("sourceos:"+id+"\nx"), 1))
		}, verify.CheckShellMinisig},
		{"changed trusted comment", func(t *testing.T, iso string) {
			b := attesttest.ReadFile(t, iso+".minisig")
			attesttest.WriteFile(t, iso+".minisig", bytes.Replace(b, []byte("sourceos:"+id), []byte("sourceos:"+id+"x"), 1))
		}, verify.CheckShellTrustedComment},
		{"statement of another signed id", editStatement(func(m map[string]any) {
			m["id"] = "urn:srcos:attestation:server-x86_64-run-41"
		}), verify.CheckShellStatement},
		{"sha256 file of another image", func(t *testing.T, iso string) {
			attesttest.WriteFile(t, iso+".sha256", []byte(strings.Repeat("1", 64)+"  "+oldISOName+"\n"))
		}, verify.CheckShellSHA256File},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 4096)
			tc.change(t, iso)
			rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
			if got := attesttest.Status(rep, tc.want); got != verify.Fail {
				t.Errorf("check %q is %s, want fail\n%s", tc.want, got, attesttest.ReportText(rep))
			}
			var failed *verify.FailedError
			if !errors.As(err, &failed) || verify.ExitCode(err) != verify.ExitFailed || rep.OK {
				t.Errorf("err = %v (exit %d), want a verification failure\n%s", err, verify.ExitCode(err), attesttest.ReportText(rep))
			}
		})
	}
}

// A statement missing beside the image: could not verify (exit 2).
func TestShellBundleWithoutStatement(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 4096)
	remove(t, iso+".intoto.json")
	rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
	if verify.ExitCode(err) != verify.ExitCannotVerify || attesttest.Status(rep, verify.CheckShellSubject) != verify.Error {
		t.Errorf("err = %v (exit %d)\n%s", err, verify.ExitCode(err), attesttest.ReportText(rep))
	}
}

// What the caller asks for and a shell bundle cannot show is refused: a
// signed build id, a reproducible rebuild on record.
func TestShellBundleCannotMeetWhatItDoesNotRecord(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 4096)
	for name, mutate := range map[string]func(*verify.VerifyOptions){
		"SOURCEOS_VERIFY_BUILD_ID":      func(o *verify.VerifyOptions) { o.ExpectBuildID = "Run 42/A" },
		"SOURCEOS_REQUIRE_REPRODUCIBLE": func(o *verify.VerifyOptions) { o.RequireReproducible = true },
	} {
		rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell, mutate)
		if verify.ExitCode(err) != verify.ExitFailed || attesttest.Status(rep, verify.CheckShellBundle) != verify.Fail ||
			!strings.Contains(rep.Checks[0].Detail, name) {
			t.Errorf("%s: err = %v\n%s", name, err, attesttest.ReportText(rep))
		}
	}
}

// A bundle of ours is never verified as a shell bundle: with the setting
// on it is verified in full; without its DSSE envelope it is refused as
// before (the envelope is missing), and an old-style statement put in its
// place does not make it pass: its signature's trusted comment is ours,
// which the old pipeline never wrote, and it is signed.
func TestShellBundleSettingDowngradesNothing(t *testing.T) {
	k := attesttest.NewKeys(t)
	fresh := func(t *testing.T) string {
		iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
		attesttest.SignISO(t, k, iso)
		return iso
	}
	t.Run("full bundle", func(t *testing.T) {
		iso := fresh(t)
		rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
		if err != nil || rep.ShellBundle != nil || len(rep.Checks) != 19 || attesttest.Status(rep, verify.CheckShellBundle) != "absent" {
			t.Errorf("err = %v\n%s", err, attesttest.ReportText(rep))
		}
		attesttest.FlipByte(t, iso+".intoto.json", 40)
		if _, err := attesttest.Verify(t, iso, k.Pub(), allowShell); verify.ExitCode(err) != verify.ExitFailed {
			t.Errorf("a changed statement beside an envelope: %v", err)
		}
	})
	t.Run("envelope removed", func(t *testing.T) {
		iso := fresh(t)
		remove(t, iso+".intoto.dsse.json")
		rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
		if verify.ExitCode(err) != verify.ExitCannotVerify || rep.ShellBundle != nil || attesttest.Status(rep, verify.CheckShellBundle) != "absent" ||
			attesttest.Status(rep, verify.CheckDSSESignature) != verify.Error || strings.Contains(err.Error(), shellSetting) {
			t.Errorf("err = %v\n%s", err, attesttest.ReportText(rep))
		}
	})
	t.Run("envelope removed, old statement", func(t *testing.T) {
		iso := fresh(t)
		remove(t, iso+".intoto.dsse.json")
		dir := filepath.Dir(iso)
		docs := oldDocuments(t, oldDesktop(), dir, []string{attesttest.ISOName}, true)
		writeDocs(t, dir, docs)
		for _, allow := range []bool{false, true} {
			rep, err := attesttest.Verify(t, iso, k.Pub(), func(o *verify.VerifyOptions) { o.AllowShellBundle = allow })
			if err == nil || rep.OK {
				t.Fatalf("setting %t: verified\n%s", allow, attesttest.ReportText(rep))
			}
			if !allow {
				continue
			}
			if verify.ExitCode(err) != verify.ExitFailed || attesttest.Status(rep, verify.CheckShellCommentForm) != verify.Fail ||
				!strings.Contains(attesttest.ReportText(rep), "signed by this pipeline") {
				t.Errorf("err = %v\n%s", err, attesttest.ReportText(rep))
			}
		}
	})
}

// Everything the unsigned statement says is printed escaped and bounded:
// anyone could have written it.
func TestShellBundleClaimsArePrintable(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 4096)
	editJSON(t, iso+".intoto.json", func(m map[string]any) {
		member(member(m, "predicate"), "builder")["id"] = "evil\x1b]0;owned\x07\u202e" + strings.Repeat("x", 10000)
	})
	rep, err := attesttest.Verify(t, iso, k.Pub(), allowShell)
	if err != nil {
		t.Fatalf("%v\n%s", err, attesttest.ReportText(rep))
	}
	text := attesttest.ReportText(rep)
	printableText(t, "report", text)
	if !strings.Contains(text, `builder: evil\x1b]0;owned\x07\u202e`) || len(text) > 8000 {
		t.Errorf("claims not escaped or not bounded (%d bytes):\n%.2000s", len(text), text)
	}
}

// serveDir serves the files in dir and counts the requests for each.
func serveDir(t *testing.T, dir string) (url func(name string) string, served func(name string) int) {
	t.Helper()
	var mu sync.Mutex
	n := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n[filepath.Base(r.URL.Path)]++
		mu.Unlock()
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.URL.Path)))
	}))
	t.Cleanup(srv.Close)
	return func(name string) string { return srv.URL + "/r/" + name },
		func(name string) int { mu.Lock(); defer mu.Unlock(); return n[name] }
}

// By URL: refused by default and with a .minisig of another key without
// fetching the image; with the setting, verified and kept.
func TestVerifyURLShellBundle(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := oldBundle(t, k, dir, oldDesktop(), 1<<20)
	url, served := serveDir(t, dir)
	run := func(pub string, allow bool) (string, string, error) {
		keep := filepath.Join(t.TempDir(), "out")
		var out bytes.Buffer
		err := verify.Run(context.Background(), verify.RunOptions{VerifyOptions: verify.VerifyOptions{Artifact: url(oldISOName), PublicKey: pub, AllowShellBundle: allow},
			Out: &out, KeepDir: keep})
		return out.String(), keep, err
	}

	out, keep, err := run(k.Pub(), false)
	if verify.ExitCode(err) != verify.ExitCannotVerify || !strings.Contains(err.Error(), shellSetting) || served(oldISOName) != 0 {
		t.Errorf("default: exit %d (%v), image fetched %d times\n%s", verify.ExitCode(err), err, served(oldISOName), out)
	}
	if got := attesttest.ListDir(t, keep); len(got) != 0 {
		t.Errorf("kept %v", got)
	}

	other := attesttest.NewKeys(t)
	out, _, err = run(other.Pub(), true)
	if verify.ExitCode(err) != verify.ExitFailed || !strings.Contains(out, "not fetched") || served(oldISOName) != 0 {
		t.Errorf("another key: exit %d (%v), image fetched %d times\n%s", verify.ExitCode(err), err, served(oldISOName), out)
	}
	if served(oldISOName+sidecar.ExtMinisig) == 0 {
		t.Error("the signature was not fetched: the test does not test what it says")
	}

	out, keep, err = run(k.Pub(), true)
	if err != nil || !strings.Contains(out, "\nOK as a shell bundle") || !strings.Contains(out, "no DSSE envelope") || served(oldISOName) != 1 {
		t.Fatalf("with the setting: %v, image fetched %d times\n%s", err, served(oldISOName), out)
	}
	for _, f := range []string{oldISOName, oldISOName + ".minisig", oldISOName + ".intoto.json", oldISOName + ".osimage.json", oldISOName + ".sha256"} {
		if !bytes.Equal(attesttest.ReadFile(t, filepath.Join(keep, f)), attesttest.ReadFile(t, filepath.Join(filepath.Dir(iso), f))) {
			t.Errorf("%s kept differs from what was served", f)
		}
	}
	if _, err := os.Stat(filepath.Join(keep, oldISOName+sidecar.ExtDSSE)); err == nil {
		t.Error("an envelope was kept that was never served")
	}
}

// `mage verify` takes the setting from SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE,
// and SOURCEOS_VERIFY_ALLOW_LEGACY is not it.
func TestShellBundleSettingFromConfig(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := oldBundle(t, k, t.TempDir(), oldDesktop(), 4096)
	for _, tc := range []struct {
		setting string
		exit    int
	}{
		{"SOURCEOS_VERIFY_ALLOW_LEGACY", verify.ExitCannotVerify},
		{shellSetting, verify.ExitOK},
	} {
		env := map[string]string{tc.setting: "1", "OUT": t.TempDir(), "SOURCEOS_SIGN_PUBKEY": k.Pub()}
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		err = verify.Run(context.Background(), verify.FromConfig(cfg, iso, &out))
		if verify.ExitCode(err) != tc.exit {
			t.Errorf("%s=1: exit %d (%v), want %d\n%s", tc.setting, verify.ExitCode(err), err, tc.exit, out.String())
		}
	}
}
