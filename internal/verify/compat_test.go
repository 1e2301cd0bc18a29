package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/verify"
)

// resignWithSubject signs anew, as an earlier release did, a statement
// whose subject is subject, over the predicate already beside iso.
func resignWithSubject(t *testing.T, k attesttest.Keys, iso string, subject provenance.Subject) {
	t.Helper()
	st, err := provenance.Statement([]provenance.Subject{subject}, attesttest.ReadFile(t, iso+".slsa.json"))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := signature.ParseSecretKey(k.Pair.SecretKey, "")
	if err != nil {
		t.Fatal(err)
	}
	env, err := sk.SignEnvelope(signature.PayloadTypeInToto, st)
	if err != nil {
		t.Fatal(err)
	}
	attesttest.WriteFile(t, iso+".intoto.json", st)
	attesttest.WriteFile(t, iso+".intoto.dsse.json", env)
}

// New statements name SHA-256 only; statements written before SHA-512 was
// dropped name both, and still verify: the SHA-512 is then computed and
// checked (a wrong one fails), also when the caller hands over digests
// without it.
func TestSHA512SubjectsStillVerify(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 3*digest.BlockSize+5)
	attesttest.SignISO(t, k, iso)
	if st := attesttest.ReadFile(t, iso+".intoto.json"); bytes.Contains(st, []byte("sha512")) {
		t.Fatalf("a new statement names SHA-512:\n%s", st)
	}
	full, err := digest.ReaderSet(bytes.NewReader(attesttest.ReadFile(t, iso)), digest.Default|digest.SHA512)
	if err != nil {
		t.Fatal(err)
	}
	resignWithSubject(t, k, iso, provenance.Subject{Name: attesttest.ISOName, SHA256: full.SHA256Hex(), SHA512: full.SHA512Hex()})
	rep, err := attesttest.Verify(t, iso, k.Pub())
	if err != nil {
		t.Fatalf("a statement with a SHA-512 subject: %v\n%s", err, attesttest.ReportText(rep))
	}
	handed, _ := digest.Reader(bytes.NewReader(attesttest.ReadFile(t, iso)))
	if rep, err := attesttest.Verify(t, iso, k.Pub(), func(o *verify.VerifyOptions) { o.Digests = &handed }); err != nil {
		t.Fatalf("handed-over digests without SHA-512: %v\n%s", err, attesttest.ReportText(rep))
	}

	wrong := sha256.Sum256([]byte("x"))
	bad := strings.Repeat(hex.EncodeToString(wrong[:]), 2)
	resignWithSubject(t, k, iso, provenance.Subject{Name: attesttest.ISOName, SHA256: full.SHA256Hex(), SHA512: bad})
	rep, err = attesttest.Verify(t, iso, k.Pub())
	if verify.ExitCode(err) != verify.ExitFailed || attesttest.Status(rep, verify.CheckSubjects) != verify.Fail {
		t.Errorf("a wrong SHA-512 subject: exit %d\n%s", verify.ExitCode(err), attesttest.ReportText(rep))
	}
}

// The rebuild check in the signed predicate is reported; it fails only
// when reproducibility is required and not recorded. The OSImage
// document's annotation is held to it.
func TestRebuildCheckReported(t *testing.T) {
	k := attesttest.NewKeys(t)
	for _, tc := range []struct {
		name    string
		mutate  []func(*attest.Options)
		require bool
		status  string
	}{
		{name: "none recorded", status: verify.Skip},
		{name: "none recorded, required", require: true, status: verify.Fail},
		{name: "reproducible", mutate: []func(*attest.Options){withRebuild(true)}, status: verify.Pass},
		{name: "reproducible, required", mutate: []func(*attest.Options){withRebuild(true)}, require: true, status: verify.Pass},
		{name: "differs", mutate: []func(*attest.Options){withRebuild(false)}, status: verify.Pass},
		{name: "differs, required", mutate: []func(*attest.Options){withRebuild(false)}, require: true, status: verify.Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
			attesttest.SignISO(t, k, iso, tc.mutate...)
			rep, err := verify.Verify(context.Background(), verify.VerifyOptions{Artifact: iso, PublicKey: k.Pub(), RequireReproducible: tc.require})
			if got := attesttest.Status(rep, verify.CheckRebuild); got != tc.status {
				t.Errorf("rebuild check %s, want %s\n%s", got, tc.status, attesttest.ReportText(rep))
			}
			wantExit := verify.ExitOK
			if tc.status == verify.Fail {
				wantExit = verify.ExitFailed
				if !errors.As(err, new(*verify.FailedError)) {
					t.Errorf("err %v", err)
				}
			}
			if verify.ExitCode(err) != wantExit {
				t.Errorf("exit %d, want %d\n%s", verify.ExitCode(err), wantExit, attesttest.ReportText(rep))
			}
		})
	}
	t.Run("annotation forged", func(t *testing.T) {
		iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
		attesttest.SignISO(t, k, iso, withRebuild(false))
		editJSON(t, iso+".osimage.json", func(m map[string]any) {
			member(m, "ociAnnotations")[provenance.AnnotationReproducible] = "true"
		})
		// Signed anew by the key holder: the predicate lists the forged
		// document and records no rebuild check at all.
		resign(t, k, iso)
		rep, err := attesttest.Verify(t, iso, k.Pub())
		if verify.ExitCode(err) != verify.ExitFailed || attesttest.Status(rep, verify.CheckOSImageClaims) != verify.Fail {
			t.Errorf("forged reproducible annotation: exit %d\n%s", verify.ExitCode(err), attesttest.ReportText(rep))
		}
	})
}
