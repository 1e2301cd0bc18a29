package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

func TestSignThenVerifyISO(t *testing.T) {
	dir := t.TempDir()
	k := attesttest.NewKeys(t)
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 3*digest.BlockSize+17)
	res := attesttest.SignISO(t, k, iso, withRebuild(true))
	if !res.Signed || res.KeyID != k.Pair.Public.ID.String() || len(res.Artifacts) != 1 {
		t.Fatalf("result: %+v", res)
	}
	for _, ext := range attesttest.AllSidecars {
		if _, err := os.Stat(iso + ext); err != nil {
			t.Errorf("sidecar %s: %v", ext, err)
		}
	}
	if got := attesttest.ListDir(t, dir); len(got) != 1+len(attesttest.AllSidecars) {
		t.Errorf("OUT holds %v (temporary files left?)", got)
	}
	rep, err := attesttest.Verify(t, iso, k.Pub())
	if err != nil || !rep.OK || verify.ExitCode(err) != 0 {
		t.Fatalf("verify: %v\n%s", err, attesttest.ReportText(rep))
	}
	for _, c := range rep.Checks {
		if c.Status != verify.Pass {
			t.Errorf("check %q: %s %s", c.Name, c.Status, c.Detail)
		}
	}
	if len(rep.Checks) != 19 {
		t.Errorf("%d checks reported, want 19", len(rep.Checks))
	}

	// Real tools agree: minisign verifies the signature (prehashed only),
	// sha256sum -c the checksum file.
	out := attesttest.MinisignVerify(t, iso, k.Pub())
	if !strings.Contains(out, "file:"+attesttest.ISOName+"\tbuild:build-42") {
		t.Errorf("trusted comment: %s", out)
	}
	cmd := exec.Command(testrig.RequireTool(t, "sha256sum"), "-c", attesttest.ISOName+".sha256")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}

	// The documents are what the provenance package checks.
	doc, err := provenance.ParseOSImage(attesttest.ReadFile(t, iso+".osimage.json"))
	if err != nil {
		t.Fatal(err)
	}
	if signed, err := doc.Signed(); err != nil || !signed {
		t.Errorf("OSImage signed = %v, %v", signed, err)
	}
	if doc.Provenance.SignatureRef != attesttest.ISOName+".minisig" || doc.Provenance.SBOMRef != attesttest.ISOName+".sbom.json" {
		t.Errorf("refs: %+v", doc.Provenance)
	}
	env, payload, err := signature.ParseEnvelope(attesttest.ReadFile(t, iso+".intoto.dsse.json"))
	if err != nil || env.Signatures[0].KeyID != k.Pair.Public.ID.Hex() || !bytes.Equal(payload, attesttest.ReadFile(t, iso+".intoto.json")) {
		t.Errorf("envelope: %v %+v", err, env)
	}
}

// editMinisig decodes line i of a .minisig, lets f change it and writes it
// back (so the file stays well-formed).
func editMinisig(t *testing.T, path string, i int, f func([]byte) []byte) {
	t.Helper()
	lines := strings.Split(string(attesttest.ReadFile(t, path)), "\n")
	if i == 2 {
		lines[i] = string(f([]byte(lines[i])))
	} else {
		raw, err := base64.StdEncoding.DecodeString(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = base64.StdEncoding.EncodeToString(f(raw))
	}
	attesttest.WriteFile(t, path, []byte(strings.Join(lines, "\n")))
}

func TestVerifyCatchesTampering(t *testing.T) {
	k := attesttest.NewKeys(t)
	other := attesttest.NewKeys(t)
	for _, m := range []mutation{
		{name: "flipped artifact byte", want: verify.CheckMinisig,
			change: func(t *testing.T, iso string) string { attesttest.FlipByte(t, iso, 1000); return iso }},
		{name: "flipped signature byte", want: verify.CheckMinisig,
			change: func(t *testing.T, iso string) string {
				editMinisig(t, iso+".minisig", 1, func(b []byte) []byte { b[30] ^= 0x01; return b })
				return iso
			}},
		{name: "flipped trusted comment byte", want: verify.CheckTrustedComment,
			change: func(t *testing.T, iso string) string {
				editMinisig(t, iso+".minisig", 2, func(b []byte) []byte { b[len("trusted comment: timestamp:")] ^= 0x01; return b })
				return iso
			}},
		{name: "flipped statement byte", want: verify.CheckDSSEStatement,
			change: func(t *testing.T, iso string) string {
				b := attesttest.ReadFile(t, iso+".intoto.json")
				i := bytes.Index(b, []byte(`"desktop"`)) + 1
				b[i] ^= 0x01
				attesttest.WriteFile(t, iso+".intoto.json", b)
				return iso
			}},
		{name: "flipped DSSE payload byte", want: verify.CheckDSSESignature,
			change: func(t *testing.T, iso string) string {
				var env signature.Envelope
				if err := json.Unmarshal(attesttest.ReadFile(t, iso+".intoto.dsse.json"), &env); err != nil {
					t.Fatal(err)
				}
				p, _ := base64.StdEncoding.DecodeString(env.Payload)
				p[bytes.Index(p, []byte(`"desktop"`))+1] ^= 0x01
				env.Payload = base64.StdEncoding.EncodeToString(p)
				b, _ := json.Marshal(env)
				attesttest.WriteFile(t, iso+".intoto.dsse.json", b)
				return iso
			}},
		{name: "renamed artifact", want: verify.CheckCommentFile,
			change: func(t *testing.T, iso string) string {
				renamed := filepath.Join(filepath.Dir(iso), "sourceos-server-x86_64.iso")
				for _, ext := range append([]string{""}, attesttest.AllSidecars...) {
					if err := os.Rename(iso+ext, renamed+ext); err != nil {
						t.Fatal(err)
					}
				}
				return renamed
			}},
		{name: "different public key", want: verify.CheckMinisigKey,
			change: func(t *testing.T, iso string) string { return iso },
			opts:   func(o *verify.VerifyOptions) { o.PublicKey = other.Pub() }},
		{name: "different key material under the same key id", want: verify.CheckMinisig,
			change: func(t *testing.T, iso string) string { return iso },
			opts: func(o *verify.VerifyOptions) {
				o.PublicKey = signature.PublicKey{ID: k.Pair.Public.ID, Key: other.Pair.Public.Key}.String()
			}},
		{name: "legacy Ed signature", want: verify.CheckMinisigPrehashed,
			change: func(t *testing.T, iso string) string { legacySign(t, k, iso); return iso }},
	} {
		t.Run(m.name, func(t *testing.T) {
			iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 2*digest.BlockSize+3)
			attesttest.SignISO(t, k, iso)
			target := m.change(t, iso)
			opts := []func(*verify.VerifyOptions){}
			if m.opts != nil {
				opts = append(opts, m.opts)
			}
			rep, err := attesttest.Verify(t, target, k.Pub(), opts...)
			if got := attesttest.Status(rep, m.want); got != verify.Fail {
				t.Errorf("check %q is %s, want fail\n%s", m.want, got, attesttest.ReportText(rep))
			}
			var failed *verify.FailedError
			if !errors.As(err, &failed) || verify.ExitCode(err) != verify.ExitFailed || rep.OK {
				t.Errorf("err = %v (exit %d), want a verification failure", err, verify.ExitCode(err))
			}
		})
	}
}

// legacySign replaces the signature with a legacy `Ed` one made by the real
// minisign CLI from the same key, trusted comment naming the file.
func legacySign(t *testing.T, k attesttest.Keys, iso string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "k.key")
	if err := signature.WriteSecretKey(keyFile, k.Pair.SecretKey); err != nil {
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
	k := attesttest.NewKeys(t)
	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, iso)
	legacySign(t, k, iso)
	rep, err := attesttest.Verify(t, iso, k.Pub(), func(o *verify.VerifyOptions) { o.AllowLegacy = true })
	if err != nil {
		t.Fatalf("%v\n%s", err, attesttest.ReportText(rep))
	}
}

func TestCannotVerify(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, iso)
	pubFile := filepath.Join(dir, "minisign.pub")
	attesttest.WriteFile(t, pubFile, k.Pair.PublicKey)

	for _, tc := range []struct {
		name   string
		path   string
		pub    string
		before func()
	}{
		{name: "no public key", path: iso, pub: ""},
		{name: "bad public key", path: iso, pub: "RWnotakey"},
		{name: "missing public key file", path: iso, pub: filepath.Join(dir, "missing.pub")},
		{name: "missing artifact", path: filepath.Join(dir, "missing.iso"), pub: k.Pub()},
		{name: "missing signature", path: iso, pub: pubFile, before: func() { os.Remove(iso + ".minisig") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			rep, err := attesttest.Verify(t, tc.path, tc.pub)
			var cannot *verify.CannotVerifyError
			if !errors.As(err, &cannot) || verify.ExitCode(err) != verify.ExitCannotVerify {
				t.Errorf("err = %v (exit %d), want could-not-verify\n%s", err, verify.ExitCode(err), attesttest.ReportText(rep))
			}
		})
	}
}

func TestPublicKeyFileAndJSONReport(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, iso)
	pubFile := filepath.Join(dir, "minisign.pub")
	attesttest.WriteFile(t, pubFile, k.Pair.PublicKey)
	for _, pub := range []string{pubFile, string(k.Pair.PublicKey)} {
		rep, err := attesttest.Verify(t, iso, pub)
		if err != nil {
			t.Fatalf("%v\n%s", err, attesttest.ReportText(rep))
		}
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var got struct {
			OK     bool `json:"ok"`
			Checks []struct{ Name, Status string }
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil || !got.OK || len(got.Checks) != 19 {
			t.Errorf("JSON report: %v %s", err, b.String())
		}
	}
}

func TestNetbootSet(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	var arts []sidecar.Artifact
	for _, p := range attesttest.NetbootSet(t, dir, attesttest.BuildInfo("netboot")) {
		arts = append(arts, sidecar.Artifact{Path: p})
	}
	res, err := attest.Write(context.Background(), attest.Options{
		Kind: sidecar.Netboot, Artifacts: arts, Build: attesttest.BuildInfo("netboot"), SecretKey: k.Secret(), Now: attesttest.Clock,
	})
	if err != nil || len(res.Artifacts) != 4 {
		t.Fatalf("sign: %v", err)
	}
	for _, a := range arts {
		for _, ext := range attesttest.AllSidecars {
			_, err := os.Stat(a.Path + ext)
			if iso := ext == ".sbom.json" || ext == ".osimage.json"; iso != errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s%s: %v", filepath.Base(a.Path), ext, err)
			}
		}
		rep, err := attesttest.Verify(t, a.Path, k.Pub())
		if err != nil {
			t.Errorf("%s: %v\n%s", a.Path, err, attesttest.ReportText(rep))
		}
		if attesttest.Status(rep, verify.CheckOSImageSchema) != verify.Skip || attesttest.Status(rep, verify.CheckByproducts) != verify.Skip {
			t.Errorf("documents check on a netboot file:\n%s", attesttest.ReportText(rep))
		}
		manifest := filepath.Base(a.Path) == sidecar.ManifestName
		if got := attesttest.Status(rep, verify.CheckNetbootSet); (got == verify.Pass) != manifest {
			t.Errorf("%s: netboot set check %s", filepath.Base(a.Path), got)
		}
		attesttest.MinisignVerify(t, a.Path, k.Pub())
	}
	if !slices.Contains(attesttest.ListDir(t, dir), "initrd.minisig") {
		t.Error("no initrd.minisig")
	}
}

// mutation changes a signed release in dir; want is the check that must
// fail because of it.
type mutation struct {
	name   string
	change func(t *testing.T, iso string) string // returns the path to verify
	opts   func(o *verify.VerifyOptions)
	want   string
}

// withRebuild records a rebuild check of the image that came out
// reproducible, or not.
func withRebuild(reproducible bool) func(*attest.Options) {
	return func(o *attest.Options) {
		out := attesttest.Closure()[1].Path
		rc := &provenance.RebuildCheck{Method: "nix build --rebuild", Output: out, Reproducible: reproducible}
		if !reproducible {
			rc.DifferingOutput = out
		}
		o.Build.Rebuild = rc
	}
}
