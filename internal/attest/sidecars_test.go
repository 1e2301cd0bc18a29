package attest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/verify"
)

func TestUnsignedWithoutKey(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, iso) // an earlier signed run
	changed := attesttest.Artifact(t, dir, attesttest.ISOName, 5000)
	res, err := attest.Write(context.Background(), attest.Options{
		Kind: sidecar.ISO, Artifacts: []sidecar.Artifact{{Path: changed}}, Build: attesttest.BuildInfo("iso"), Now: attesttest.Clock,
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
	doc, err := provenance.ParseOSImage(attesttest.ReadFile(t, iso+".osimage.json"))
	if err != nil {
		t.Fatal(err)
	}
	if signed, err := doc.Signed(); err != nil || signed || doc.Provenance.SignatureRef != "" {
		t.Errorf("unsigned OSImage says signed=%v (%v), signatureRef %q", signed, err, doc.Provenance.SignatureRef)
	}
	rep, err := attesttest.Verify(t, iso, k.Pub())
	if verify.ExitCode(err) == 0 {
		t.Errorf("unsigned artifact verified\n%s", attesttest.ReportText(rep))
	}
}

func TestRequireSignature(t *testing.T) {
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
	_, err := attest.Write(context.Background(), attest.Options{
		Kind: sidecar.ISO, Artifacts: []sidecar.Artifact{{Path: iso}}, Build: attesttest.BuildInfo("iso"), Now: attesttest.Clock,
		RequireSignature: true,
	})
	if !errors.Is(err, attest.ErrUnsigned) {
		t.Errorf("err = %v, want ErrUnsigned", err)
	}
	if got := attesttest.ListDir(t, dir); len(got) != 1 {
		t.Errorf("files written: %v", got)
	}
}

// A key that does not load fails before anything is written.
func TestBadKeyWritesNothing(t *testing.T) {
	enc, err := signature.Generate(signature.GenerateOptions{Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		key, password string
		want          error
	}{
		{"garbage", "untrusted comment: x\nRWRnot-a-key\n", "", signature.ErrKeyFormat},
		{"wrong password", string(enc.SecretKey), "wrong", signature.ErrWrongPassword},
		{"no password", string(enc.SecretKey), "", signature.ErrPasswordRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
			_, err := attest.Write(context.Background(), attest.Options{
				Kind: sidecar.ISO, Artifacts: []sidecar.Artifact{{Path: iso}}, Build: attesttest.BuildInfo("iso"), Now: attesttest.Clock,
				SecretKey: config.NewSecret(tc.key), Password: config.NewSecret(tc.password),
			})
			var ke *attest.KeyError
			if !errors.As(err, &ke) || !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want KeyError wrapping %v", err, tc.want)
			}
			if got := attesttest.ListDir(t, dir); len(got) != 1 {
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
	kp, err := signature.Generate(signature.GenerateOptions{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	plain := attesttest.NewKeys(t)
	out := t.TempDir()
	iso := attesttest.Artifact(t, out, attesttest.ISOName, 4096)
	var log bytes.Buffer
	res, err := attest.Write(context.Background(), attest.Options{
		Kind: sidecar.ISO, Artifacts: []sidecar.Artifact{{Path: iso}}, Build: attesttest.BuildInfo("iso"), Closure: attesttest.Closure(), Now: attesttest.Clock,
		SecretKey: config.NewSecret(string(kp.SecretKey)), Password: config.NewSecret(password),
		Log: slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil || !res.Signed {
		t.Fatalf("sign: %v", err)
	}
	// The unencrypted form of the same kind of key: fragments of its raw
	// seed must not show up either (checked with a plain key we can read).
	attesttest.SignISO(t, plain, attesttest.Artifact(t, out, "other.iso", 4096), func(o *attest.Options) {
		o.Log = slog.New(slog.NewTextHandler(&log, nil))
	})
	needles := append(attesttest.Fragments(t, plain.Pair.SecretKey), password)
	encLine := strings.Split(strings.TrimSpace(string(kp.SecretKey)), "\n")[1]
	needles = append(needles, encLine[60:100])
	for _, root := range []string{out, tmp} {
		for _, name := range attesttest.ListDir(t, root) {
			b := attesttest.ReadFile(t, filepath.Join(root, name))
			for _, n := range needles {
				if bytes.Contains(b, []byte(n)) {
					t.Errorf("%s contains key material %q", name, n)
				}
			}
		}
	}
	if got := attesttest.ListDir(t, tmp); len(got) != 0 {
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
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	iso := attesttest.Artifact(t, dir, attesttest.ISOName, 4096)
	d, err := digest.Reader(bytes.NewReader(bytes.Repeat([]byte{7}, 4096))) // same size, other bytes
	if err != nil {
		t.Fatal(err)
	}
	attesttest.SignISO(t, k, iso, func(o *attest.Options) { o.Artifacts[0].Digests = &d })
	if got := string(attesttest.ReadFile(t, iso+".sha256")); !strings.HasPrefix(got, d.SHA256Hex()+"  ") {
		t.Errorf("sha256 sidecar %q does not come from the handed-over digests", got)
	}
	short, _ := digest.Reader(bytes.NewReader([]byte("x")))
	_, err = attest.Write(context.Background(), attest.Options{Kind: sidecar.ISO, Artifacts: []sidecar.Artifact{{Path: iso, Digests: &short}},
		Build: attesttest.BuildInfo("iso"), Now: attesttest.Clock})
	if err == nil {
		t.Error("digests of another size accepted")
	}
}

func TestRefsUnderGCSPrefix(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, iso, func(o *attest.Options) { o.GCSPrefix = "gs://sourceos-releases/desktop/1.2.3/" })
	doc, err := provenance.ParseOSImage(attesttest.ReadFile(t, iso+".osimage.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := "https://storage.googleapis.com/sourceos-releases/desktop/1.2.3/" + attesttest.ISOName + ".minisig"
	if doc.Provenance.SignatureRef != want {
		t.Errorf("signatureRef %q, want %q", doc.Provenance.SignatureRef, want)
	}
	if rep, err := attesttest.Verify(t, iso, k.Pub()); err != nil {
		t.Errorf("%v\n%s", err, attesttest.ReportText(rep))
	}
}
