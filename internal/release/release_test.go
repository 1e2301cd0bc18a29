package release_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/release"
	"github.com/socioprophet/sourceos/internal/sign"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const isoName = "sourceos-desktop-x86_64.iso"

var allSidecars = []string{".sha256", ".minisig", ".intoto.json", ".intoto.dsse.json", ".slsa.json", ".sbom.json", ".osimage.json"}

func TestSignThenVerifyISO(t *testing.T) {
	dir := t.TempDir()
	k := newKeys(t)
	iso := artifact(t, dir, isoName, 3*digest.BlockSize+17)
	res := signISO(t, k, iso)
	if !res.Signed || res.KeyID != k.pair.Public.ID.String() || len(res.Artifacts) != 1 {
		t.Fatalf("result: %+v", res)
	}
	for _, ext := range allSidecars {
		if _, err := os.Stat(iso + ext); err != nil {
			t.Errorf("sidecar %s: %v", ext, err)
		}
	}
	if got := listDir(t, dir); len(got) != 1+len(allSidecars) {
		t.Errorf("OUT holds %v (temporary files left?)", got)
	}
	rep, err := verify(t, iso, k.pub())
	if err != nil || !rep.OK || release.ExitCode(err) != 0 {
		t.Fatalf("verify: %v\n%s", err, reportText(rep))
	}
	for _, c := range rep.Checks {
		if c.Status != release.Pass {
			t.Errorf("check %q: %s %s", c.Name, c.Status, c.Detail)
		}
	}
	if len(rep.Checks) != 17 {
		t.Errorf("%d checks reported, want 17", len(rep.Checks))
	}

	// Real tools agree: minisign verifies the signature (prehashed only),
	// sha256sum -c the checksum file.
	out := minisignVerify(t, iso, k.pub())
	if !strings.Contains(out, "file:"+isoName+"\tbuild:build-42") {
		t.Errorf("trusted comment: %s", out)
	}
	cmd := exec.Command(testrig.RequireTool(t, "sha256sum"), "-c", isoName+".sha256")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}

	// The documents are what the provenance package checks.
	doc, err := provenance.ParseOSImage(readFile(t, iso+".osimage.json"))
	if err != nil {
		t.Fatal(err)
	}
	if signed, err := doc.Signed(); err != nil || !signed {
		t.Errorf("OSImage signed = %v, %v", signed, err)
	}
	if doc.Provenance.SignatureRef != isoName+".minisig" || doc.Provenance.SBOMRef != isoName+".sbom.json" {
		t.Errorf("refs: %+v", doc.Provenance)
	}
	env, payload, err := sign.ParseEnvelope(readFile(t, iso+".intoto.dsse.json"))
	if err != nil || env.Signatures[0].KeyID != k.pair.Public.ID.Hex() || !bytes.Equal(payload, readFile(t, iso+".intoto.json")) {
		t.Errorf("envelope: %v %+v", err, env)
	}
}

// mutation changes a signed release in dir; want is the check that must
// fail because of it.
type mutation struct {
	name   string
	change func(t *testing.T, iso string) string // returns the path to verify
	opts   func(o *release.VerifyOptions)
	want   string
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	b := readFile(t, path)
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	writeFile(t, path, b)
}

// editMinisig decodes line i of a .minisig, lets f change it and writes it
// back (so the file stays well-formed).
func editMinisig(t *testing.T, path string, i int, f func([]byte) []byte) {
	t.Helper()
	lines := strings.Split(string(readFile(t, path)), "\n")
	if i == 2 {
		lines[i] = string(f([]byte(lines[i])))
	} else {
		raw, err := base64.StdEncoding.DecodeString(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = base64.StdEncoding.EncodeToString(f(raw))
	}
	writeFile(t, path, []byte(strings.Join(lines, "\n")))
}

func TestVerifyCatchesTampering(t *testing.T) {
	k := newKeys(t)
	other := newKeys(t)
	for _, m := range []mutation{
		{name: "flipped artifact byte", want: release.CheckMinisig,
			change: func(t *testing.T, iso string) string { flipByte(t, iso, 1000); return iso }},
		{name: "flipped signature byte", want: release.CheckMinisig,
			change: func(t *testing.T, iso string) string {
				editMinisig(t, iso+".minisig", 1, func(b []byte) []byte { b[30] ^= 0x01; return b })
				return iso
			}},
		{name: "flipped trusted comment byte", want: release.CheckTrustedComment,
			change: func(t *testing.T, iso string) string {
				editMinisig(t, iso+".minisig", 2, func(b []byte) []byte { b[len("trusted comment: timestamp:")] ^= 0x01; return b })
				return iso
			}},
		{name: "flipped statement byte", want: release.CheckDSSEStatement,
			change: func(t *testing.T, iso string) string {
				b := readFile(t, iso+".intoto.json")
				i := bytes.Index(b, []byte(`"desktop"`)) + 1
				b[i] ^= 0x01
				writeFile(t, iso+".intoto.json", b)
				return iso
			}},
		{name: "flipped DSSE payload byte", want: release.CheckDSSESignature,
			change: func(t *testing.T, iso string) string {
				var env sign.Envelope
				if err := json.Unmarshal(readFile(t, iso+".intoto.dsse.json"), &env); err != nil {
					t.Fatal(err)
				}
				p, _ := base64.StdEncoding.DecodeString(env.Payload)
				p[bytes.Index(p, []byte(`"desktop"`))+1] ^= 0x01
				env.Payload = base64.StdEncoding.EncodeToString(p)
				b, _ := json.Marshal(env)
				writeFile(t, iso+".intoto.dsse.json", b)
				return iso
			}},
		{name: "renamed artifact", want: release.CheckCommentFile,
			change: func(t *testing.T, iso string) string {
				renamed := filepath.Join(filepath.Dir(iso), "sourceos-server-x86_64.iso")
				for _, ext := range append([]string{""}, allSidecars...) {
					if err := os.Rename(iso+ext, renamed+ext); err != nil {
						t.Fatal(err)
					}
				}
				return renamed
			}},
		{name: "different public key", want: release.CheckMinisigKey,
			change: func(t *testing.T, iso string) string { return iso },
			opts:   func(o *release.VerifyOptions) { o.PublicKey = other.pub() }},
		{name: "different key material under the same key id", want: release.CheckMinisig,
			change: func(t *testing.T, iso string) string { return iso },
			opts: func(o *release.VerifyOptions) {
				o.PublicKey = sign.PublicKey{ID: k.pair.Public.ID, Key: other.pair.Public.Key}.String()
			}},
		{name: "legacy Ed signature", want: release.CheckMinisigPrehashed,
			change: func(t *testing.T, iso string) string { legacySign(t, k, iso); return iso }},
	} {
		t.Run(m.name, func(t *testing.T) {
			iso := artifact(t, t.TempDir(), isoName, 2*digest.BlockSize+3)
			signISO(t, k, iso)
			target := m.change(t, iso)
			opts := []func(*release.VerifyOptions){}
			if m.opts != nil {
				opts = append(opts, m.opts)
			}
			rep, err := verify(t, target, k.pub(), opts...)
			if got := status(rep, m.want); got != release.Fail {
				t.Errorf("check %q is %s, want fail\n%s", m.want, got, reportText(rep))
			}
			var failed *release.FailedError
			if !errors.As(err, &failed) || release.ExitCode(err) != release.ExitFailed || rep.OK {
				t.Errorf("err = %v (exit %d), want a verification failure", err, release.ExitCode(err))
			}
		})
	}
}

// legacySign replaces the signature with a legacy `Ed` one made by the real
// minisign CLI from the same key, trusted comment naming the file.
func legacySign(t *testing.T, k keys, iso string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "k.key")
	if err := sign.WriteSecretKey(keyFile, k.pair.SecretKey); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testrig.RequireTool(t, "minisign"), "-S", "-l", "-W", "-s", keyFile, "-m", iso,
		"-t", "timestamp:1\tfile:"+filepath.Base(iso)).CombinedOutput()
	if err != nil {
		t.Fatalf("minisign -S -l: %v\n%s", err, out)
	}
}

// A legacy signature passes only when explicitly allowed.
func TestLegacyAllowed(t *testing.T) {
	k := newKeys(t)
	iso := artifact(t, t.TempDir(), isoName, 4096)
	signISO(t, k, iso)
	legacySign(t, k, iso)
	rep, err := verify(t, iso, k.pub(), func(o *release.VerifyOptions) { o.AllowLegacy = true })
	if err != nil {
		t.Fatalf("%v\n%s", err, reportText(rep))
	}
}

func TestCannotVerify(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	iso := artifact(t, dir, isoName, 4096)
	signISO(t, k, iso)
	pubFile := filepath.Join(dir, "minisign.pub")
	writeFile(t, pubFile, k.pair.PublicKey)

	for _, tc := range []struct {
		name   string
		path   string
		pub    string
		before func()
	}{
		{name: "no public key", path: iso, pub: ""},
		{name: "bad public key", path: iso, pub: "RWnotakey"},
		{name: "missing public key file", path: iso, pub: filepath.Join(dir, "missing.pub")},
		{name: "missing artifact", path: filepath.Join(dir, "missing.iso"), pub: k.pub()},
		{name: "missing signature", path: iso, pub: pubFile, before: func() { os.Remove(iso + ".minisig") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			rep, err := verify(t, tc.path, tc.pub)
			var cannot *release.CannotVerifyError
			if !errors.As(err, &cannot) || release.ExitCode(err) != release.ExitCannotVerify {
				t.Errorf("err = %v (exit %d), want could-not-verify\n%s", err, release.ExitCode(err), reportText(rep))
			}
		})
	}
}

func TestPublicKeyFileAndJSONReport(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	iso := artifact(t, dir, isoName, 4096)
	signISO(t, k, iso)
	pubFile := filepath.Join(dir, "minisign.pub")
	writeFile(t, pubFile, k.pair.PublicKey)
	for _, pub := range []string{pubFile, string(k.pair.PublicKey)} {
		rep, err := verify(t, iso, pub)
		if err != nil {
			t.Fatalf("%v\n%s", err, reportText(rep))
		}
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var got struct {
			OK     bool `json:"ok"`
			Checks []struct{ Name, Status string }
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil || !got.OK || len(got.Checks) != 17 {
			t.Errorf("JSON report: %v %s", err, b.String())
		}
	}
}

func TestUnsignedWithoutKey(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	iso := artifact(t, dir, isoName, 4096)
	signISO(t, k, iso) // an earlier signed run
	changed := artifact(t, dir, isoName, 5000)
	res, err := release.Sign(context.Background(), release.SignOptions{
		Kind: release.ISO, Artifacts: []release.Artifact{{Path: changed}}, Build: buildInfo("iso"), Now: clock,
	})
	if err != nil || res.Signed {
		t.Fatalf("unsigned sign: %v %+v", err, res)
	}
	// The earlier run's signatures and SBOM (this run has no closure) go.
	for _, ext := range []string{".minisig", ".intoto.dsse.json", ".sbom.json"} {
		if _, err := os.Stat(iso + ext); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s left beside unsigned output: %v", ext, err)
		}
	}
	doc, err := provenance.ParseOSImage(readFile(t, iso+".osimage.json"))
	if err != nil {
		t.Fatal(err)
	}
	if signed, err := doc.Signed(); err != nil || signed || doc.Provenance.SignatureRef != "" {
		t.Errorf("unsigned OSImage says signed=%v (%v), signatureRef %q", signed, err, doc.Provenance.SignatureRef)
	}
	rep, err := verify(t, iso, k.pub())
	if release.ExitCode(err) == 0 {
		t.Errorf("unsigned artifact verified\n%s", reportText(rep))
	}
}

func TestRequireSignature(t *testing.T) {
	dir := t.TempDir()
	iso := artifact(t, dir, isoName, 4096)
	_, err := release.Sign(context.Background(), release.SignOptions{
		Kind: release.ISO, Artifacts: []release.Artifact{{Path: iso}}, Build: buildInfo("iso"), Now: clock,
		RequireSignature: true,
	})
	if !errors.Is(err, release.ErrUnsigned) {
		t.Errorf("err = %v, want ErrUnsigned", err)
	}
	if got := listDir(t, dir); len(got) != 1 {
		t.Errorf("files written: %v", got)
	}
}

// A key that does not load fails before anything is written.
func TestBadKeyWritesNothing(t *testing.T) {
	enc, err := sign.Generate(sign.GenerateOptions{Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		key, password string
		want          error
	}{
		{"garbage", "untrusted comment: x\nRWRnot-a-key\n", "", sign.ErrKeyFormat},
		{"wrong password", string(enc.SecretKey), "wrong", sign.ErrWrongPassword},
		{"no password", string(enc.SecretKey), "", sign.ErrPasswordRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			iso := artifact(t, dir, isoName, 4096)
			_, err := release.Sign(context.Background(), release.SignOptions{
				Kind: release.ISO, Artifacts: []release.Artifact{{Path: iso}}, Build: buildInfo("iso"), Now: clock,
				SecretKey: config.NewSecret(tc.key), Password: config.NewSecret(tc.password),
			})
			var ke *release.KeyError
			if !errors.As(err, &ke) || !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want KeyError wrapping %v", err, tc.want)
			}
			if got := listDir(t, dir); len(got) != 1 {
				t.Errorf("files written: %v", got)
			}
			if strings.Contains(err.Error(), "RWR") || strings.Contains(err.Error(), tc.password+"\x00") {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

// Signing with a key set leaves no key material in OUT, the temp dir or
// the log, and Sign starts no child process that could inherit it.
func TestSecretsStayInMemory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	const password = "hunter2-is-the-password"
	kp, err := sign.Generate(sign.GenerateOptions{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	plain := newKeys(t)
	out := t.TempDir()
	iso := artifact(t, out, isoName, 4096)
	var log bytes.Buffer
	res, err := release.Sign(context.Background(), release.SignOptions{
		Kind: release.ISO, Artifacts: []release.Artifact{{Path: iso}}, Build: buildInfo("iso"), Closure: closure(), Now: clock,
		SecretKey: config.NewSecret(string(kp.SecretKey)), Password: config.NewSecret(password),
		Log: slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil || !res.Signed {
		t.Fatalf("sign: %v", err)
	}
	// The unencrypted form of the same kind of key: fragments of its raw
	// seed must not show up either (checked with a plain key we can read).
	signISO(t, plain, artifact(t, out, "other.iso", 4096), func(o *release.SignOptions) {
		o.Log = slog.New(slog.NewTextHandler(&log, nil))
	})
	needles := append(fragments(t, plain.pair.SecretKey), password)
	encLine := strings.Split(strings.TrimSpace(string(kp.SecretKey)), "\n")[1]
	needles = append(needles, encLine[60:100])
	for _, root := range []string{out, tmp} {
		for _, name := range listDir(t, root) {
			b := readFile(t, filepath.Join(root, name))
			for _, n := range needles {
				if bytes.Contains(b, []byte(n)) {
					t.Errorf("%s contains key material %q", name, n)
				}
			}
		}
	}
	if got := listDir(t, tmp); len(got) != 0 {
		t.Errorf("temp dir holds %v", got)
	}
	for _, n := range needles {
		if strings.Contains(log.String(), n) {
			t.Errorf("log contains key material %q", n)
		}
	}
	if log.Len() == 0 {
		t.Error("nothing logged: the log check proves nothing")
	}
}

// Handed-over digests are used as they are: the file is not read again.
func TestPrecomputedDigestsAreUsed(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	iso := artifact(t, dir, isoName, 4096)
	d, err := digest.Reader(bytes.NewReader(bytes.Repeat([]byte{7}, 4096))) // same size, other bytes
	if err != nil {
		t.Fatal(err)
	}
	signISO(t, k, iso, func(o *release.SignOptions) { o.Artifacts[0].Digests = &d })
	if got := string(readFile(t, iso+".sha256")); !strings.HasPrefix(got, d.SHA256Hex()+"  ") {
		t.Errorf("sha256 sidecar %q does not come from the handed-over digests", got)
	}
	short, _ := digest.Reader(bytes.NewReader([]byte("x")))
	_, err = release.Sign(context.Background(), release.SignOptions{Kind: release.ISO, Artifacts: []release.Artifact{{Path: iso, Digests: &short}},
		Build: buildInfo("iso"), Now: clock})
	if err == nil {
		t.Error("digests of another size accepted")
	}
}

func TestRefsUnderGCSPrefix(t *testing.T) {
	k := newKeys(t)
	iso := artifact(t, t.TempDir(), isoName, 4096)
	signISO(t, k, iso, func(o *release.SignOptions) { o.GCSPrefix = "gs://sourceos-releases/desktop/1.2.3/" })
	doc, err := provenance.ParseOSImage(readFile(t, iso+".osimage.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := "https://storage.googleapis.com/sourceos-releases/desktop/1.2.3/" + isoName + ".minisig"
	if doc.Provenance.SignatureRef != want {
		t.Errorf("signatureRef %q, want %q", doc.Provenance.SignatureRef, want)
	}
	if rep, err := verify(t, iso, k.pub()); err != nil {
		t.Errorf("%v\n%s", err, reportText(rep))
	}
}

func TestNetbootSet(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	var arts []release.Artifact
	for _, p := range netbootSet(t, dir, buildInfo("netboot")) {
		arts = append(arts, release.Artifact{Path: p})
	}
	res, err := release.Sign(context.Background(), release.SignOptions{
		Kind: release.Netboot, Artifacts: arts, Build: buildInfo("netboot"), SecretKey: k.secret(), Now: clock,
	})
	if err != nil || len(res.Artifacts) != 4 {
		t.Fatalf("sign: %v", err)
	}
	for _, a := range arts {
		for _, ext := range allSidecars {
			_, err := os.Stat(a.Path + ext)
			if iso := ext == ".sbom.json" || ext == ".osimage.json"; iso != errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s%s: %v", filepath.Base(a.Path), ext, err)
			}
		}
		rep, err := verify(t, a.Path, k.pub())
		if err != nil {
			t.Errorf("%s: %v\n%s", a.Path, err, reportText(rep))
		}
		if status(rep, release.CheckOSImageSchema) != release.Skip || status(rep, release.CheckByproducts) != release.Skip {
			t.Errorf("documents check on a netboot file:\n%s", reportText(rep))
		}
		manifest := filepath.Base(a.Path) == release.ManifestName
		if got := status(rep, release.CheckNetbootSet); (got == release.Pass) != manifest {
			t.Errorf("%s: netboot set check %s", filepath.Base(a.Path), got)
		}
		minisignVerify(t, a.Path, k.pub())
	}
	if !slices.Contains(listDir(t, dir), "initrd.minisig") {
		t.Error("no initrd.minisig")
	}
}

// netbootSet writes a kernel, an initrd, an iPXE script and the manifest
// listing them (as the build writes it) to dir; it returns their paths,
// the manifest last.
func netbootSet(t *testing.T, dir string, b provenance.BuildInfo) []string {
	t.Helper()
	type entry struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	}
	var paths []string
	var files []entry
	for _, name := range []string{"bzImage", "initrd", "netboot.ipxe"} {
		p := artifact(t, dir, name, 2048)
		d, err := digest.Reader(bytes.NewReader(readFile(t, p)))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		files = append(files, entry{File: name, SHA256: d.SHA256Hex(), Size: d.Size})
	}
	m := map[string]any{"edition": b.Edition, "arch": b.Arch, "version": b.Version,
		"kernel": files[0], "initrd": files[1], "ipxe": files[2], "kernelArgs": "init=/init console=ttyS0", "files": files}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, release.ManifestName)
	writeFile(t, manifest, append(raw, '\n'))
	return append(paths, manifest)
}

func TestRef(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"", "a.iso.minisig"}:                    "a.iso.minisig",
		{"gs://b/p", "a.iso.minisig"}:            "https://storage.googleapis.com/b/p/a.iso.minisig",
		{"gs://b/p/", "a b"}:                     "https://storage.googleapis.com/b/p/a%20b",
		{"https://cdn.example/r", "a.sbom.json"}: "https://cdn.example/r/a.sbom.json",
	} {
		if got := release.Ref(in[0], in[1]); got != want {
			t.Errorf("Ref(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
