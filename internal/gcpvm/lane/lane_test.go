package lane_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/socioprophet/sourceos/internal/buildrecord"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/gcpvm/gcpvmtest"
	"github.com/socioprophet/sourceos/internal/gcpvm/lane"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

const (
	bucket = "sourceos-builds"
	prefix = "user-builds/user-7/build-42"
	spec   = `{"edition":"server","arch":"x86_64","hostname":"box-1"}`
)

func status(t *testing.T, gcs *testrig.GCS) gcpvm.Status {
	t.Helper()
	code, body := gcs.Get(t, bucket, prefix+"/status.json")
	if code != http.StatusOK {
		t.Fatalf("status.json: HTTP %d", code)
	}
	var st gcpvm.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// runVM runs `mage gcp:build`'s code on a fake VM with the given metadata;
// the build is the real wiring (lane.CustomBuild) with real Nix.
func runVM(t *testing.T, attrs map[string]string) (*gcpvmtest.VM, string, error) {
	t.Helper()
	return runVMPrepared(t, attrs, nil)
}

// runVMPrepared is runVM with a hook that sees the fake VM (and its
// address) before the lane starts.
func runVMPrepared(t *testing.T, attrs map[string]string, prepare func(*gcpvmtest.VM)) (*gcpvmtest.VM, string, error) {
	t.Helper()
	vm := gcpvmtest.Start(t, attrs)
	if prepare != nil {
		prepare(vm)
	}
	var log bytes.Buffer
	env := map[string]string{"OUT": t.TempDir()}
	deps := func(cfg *config.Config) image.Deps {
		red := cfg.Redactor()
		w := red.Writer(&log)
		return image.Deps{Cfg: cfg, Run: &execx.Exec{SecretNames: config.SecretNames(), Redactor: red, Log: w},
			Log: slog.New(slog.NewTextHandler(w, nil)), Stream: w}
	}
	err := gcpvm.Run(context.Background(), gcpvm.Options{
		Build:      lane.CustomBuild(deps, func(s *image.Summary) error { return s.Print(&log) }),
		Env:        func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		ComputeURL: vm.ComputeURL,
		Stderr:     &log,
		TempDir:    t.TempDir(),
	})
	return vm, log.String(), err
}

func baseAttrs(t *testing.T) map[string]string {
	return map[string]string{
		"sourceos-spec":       spec,
		"sourceos-build-uid":  "user-7",
		"sourceos-build-id":   "build-42",
		"sourceos-gcs-prefix": "gs://" + bucket + "/" + prefix,
		"sourceos-version":    "1.4.0",
		"sourceos-flake":      testrig.FixtureFlake(t),
	}
}

func checkDeleted(t *testing.T, vm *gcpvmtest.VM) {
	t.Helper()
	if got := vm.DeleteCalls(); len(got) != 1 || got[0] != gcpvmtest.WantDelete {
		t.Errorf("delete calls = %q, want [%q]", got, gcpvmtest.WantDelete)
	}
}

// The whole VM lane with real Nix, offline: metadata from the fake server,
// the fixture flake, build:custom's code, the unsigned image and its build
// record in the fake GCS bucket, status built, the self-delete call; then
// the trusted signer hashes, signs and verifies it and says complete.
func TestVMLaneThenSignerEndToEnd(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	vm, log, err := runVM(t, baseAttrs(t))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	st := status(t, gcs)
	if st.State != gcpvm.Built || st.Signed || st.ArtifactURL != "gs://"+bucket+"/"+prefix+"/"+iso {
		t.Fatalf("status = %+v\n%s", st, log)
	}
	if got := objects(t, gcs); strings.Join(got, " ") != iso+" "+iso+buildrecord.Ext+" status.json" {
		t.Errorf("after the build: %v", got)
	}
	checkDeleted(t, vm)

	keys := newKeys(t)
	if err := signBuild(t, keys.env(), spec); err != nil {
		t.Fatalf("gcp:attest: %v", err)
	}
	st = status(t, gcs)
	if st.State != gcpvm.Complete || !st.Signed || st.Error != "" {
		t.Fatalf("after signing: status = %+v", st)
	}
	if got := objects(t, gcs); slices.Contains(got, iso+buildrecord.Ext) {
		t.Errorf("the unsigned build record stayed beside the signed image: %v", got)
	}
	dir := download(t, gcs)
	// A custom build is not a release: refused by default, with the
	// setting that accepts it named; accepted, labelled custom, when
	// asked for by build id or by the setting.
	opts := verify.VerifyOptions{Artifact: filepath.Join(dir, iso), PublicKey: keys.pub}
	rep, err := verify.Verify(context.Background(), opts)
	var failed *verify.FailedError
	if !errors.As(err, &failed) || !slices.Equal(failed.Checks, []string{verify.CheckKind}) ||
		!strings.Contains(checkDetail(rep, verify.CheckKind), "SOURCEOS_VERIFY_ALLOW_CUSTOM") {
		t.Fatalf("mage verify of a custom build under default settings: %v %+v", err, rep)
	}
	for name, o := range map[string]verify.VerifyOptions{
		"by build id": {Artifact: opts.Artifact, PublicKey: keys.pub, ExpectBuildID: "build-42"},
		"by setting":  {Artifact: opts.Artifact, PublicKey: keys.pub, AllowCustom: true},
	} {
		rep, err := verify.Verify(context.Background(), o)
		if err != nil || rep.Builder == nil || rep.Builder.Custom == nil || rep.Builder.Custom.User != "user-7" ||
			rep.Builder.ID != provenance.CustomBuilderID {
			t.Fatalf("mage verify asking for the custom build %s: %v %+v", name, err, rep)
		}
	}
	if _, err := verify.Verify(context.Background(), verify.VerifyOptions{Artifact: opts.Artifact, PublicKey: keys.pub, ExpectBuildID: "build-41"}); !errors.As(err, &failed) {
		t.Errorf("another build id accepted: %v", err)
	}
	// The signed provenance carries the customisation and the digest of
	// the spec as dispatched, and claims no release attribute.
	slsa, _ := os.ReadFile(filepath.Join(dir, iso+sidecar.ExtSLSA))
	sum := sha256.Sum256([]byte(spec))
	for _, want := range []string{provenance.CustomBuilderID, provenance.CustomBuildType, "box-1", "1.4.0-signer",
		hex.EncodeToString(sum[:]), `"user": "user-7"`, "packages.x86_64-linux.custom-iso"} {
		if !strings.Contains(string(slsa), want) {
			t.Errorf("provenance lacks %q", want)
		}
	}
	if strings.Contains(string(slsa), "sourceos-server-iso") {
		t.Errorf("provenance claims the release attribute:\n%s", slsa)
	}
	// Signed once: a second run finds nothing to sign.
	if err := signBuild(t, keys.env(), spec); err == nil || !strings.Contains(err.Error(), `"complete"`) {
		t.Errorf("second gcp:attest: %v", err)
	}
}

// What the build machine leaves is not trusted: an image swapped after the
// record was written, a record for another spec, a status that does not say
// built. Each is refused and, where there is a build, reported.
func TestSignerRefusesWhatTheBuilderCannotProve(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	if _, log, err := runVM(t, baseAttrs(t)); err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	keys := newKeys(t)
	other := `{"edition":"server","arch":"x86_64","hostname":"box-2"}`
	if err := signBuild(t, keys.env(), other); err == nil || !strings.Contains(err.Error(), "another spec") {
		t.Errorf("other spec: %v", err)
	}
	resetStatus(t, gcs)
	put(t, gcs, prefix+"/"+iso, []byte("an image the builder swapped in after recording its digest"))
	if err := signBuild(t, keys.env(), spec); err == nil || !strings.Contains(err.Error(), "not the file the build recorded") {
		t.Errorf("swapped image: %v", err)
	}
	st := status(t, gcs)
	if st.State != gcpvm.Failed || st.Signed || !strings.Contains(st.Error, "signing failed") {
		t.Errorf("status after a refused image = %+v", st)
	}
	if got := objects(t, gcs); slices.ContainsFunc(got, func(o string) bool { return strings.HasSuffix(o, ".minisig") }) {
		t.Errorf("a signature was published: %v", got)
	}
	put(t, gcs, prefix+"/"+iso+buildrecord.Ext, []byte(`{"schema":"x","artifact":"../../etc"}`))
	resetStatus(t, gcs)
	if err := signBuild(t, keys.env(), spec); err == nil || !strings.Contains(err.Error(), "build record") {
		t.Errorf("forged record: %v", err)
	}
}

// A build VM whose metadata carries a key refuses to build: it names the
// attributes, never their values, and still reports and deletes itself.
func TestVMLaneRefusesKeysInMetadata(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	keys := newKeys(t)
	attrs := baseAttrs(t)
	attrs["sourceos-sign-secret-key"] = keys.secret
	vm, log, err := runVM(t, attrs)
	if err == nil || !strings.Contains(err.Error(), gcpvm.ErrKeysInMetadata.Error()) {
		t.Fatalf("Run error = %v, want ErrKeysInMetadata\n%s", err, log)
	}
	st := status(t, gcs)
	if st.State != gcpvm.Failed || !strings.Contains(st.Error, "sourceos-sign-secret-key") {
		t.Errorf("status = %+v", st)
	}
	if strings.Contains(log, "nix build") || strings.Contains(log, "+ nix") {
		t.Errorf("nix ran on a VM with a key in its metadata:\n%s", log)
	}
	line := keys.line()
	if strings.Contains(log, line) || strings.Contains(st.Error, line) {
		t.Error("the key's value was read into the log or the status")
	}
	checkDeleted(t, vm)
}

// A fixed-output derivation shares the VM's network even in Nix's
// sandbox: a snippet's FOD reaches the metadata server, dumps every
// attribute and the VM's token into its log and fails, so the log tail
// lands in status.json. The keys exist on the lane (the process that starts
// it has one) but not on the VM: none is in anything the build produced.
func TestVMLaneHostileFODFindsNoKey(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	keys := newKeys(t)
	t.Setenv("SOURCEOS_SIGN_SECRET_KEY", keys.secret)
	attrs := baseAttrs(t)
	attrs["sourceos-allow-module-snippet"] = "1"
	vm, log, err := runVMPrepared(t, attrs, func(vm *gcpvmtest.VM) {
		md := os.Getenv("GCE_METADATA_HOST")
		script := `for p in "instance/attributes/?recursive=true" instance/service-accounts/default/token; do ` +
			`wget -q -O - --header "Metadata-Flavor: Google" "http://` + md + `/computeMetadata/v1/$p" >&2 || echo "no $p" >&2; done; ` +
			`cat /proc/*/environ >&2; exit 1`
		vm.Attrs["sourceos-spec"] = hostileSpec(t, script)
	})
	if err == nil {
		t.Fatalf("the hostile build succeeded\n%s", log)
	}
	reached := slices.ContainsFunc(vm.Requests(), func(r string) bool { return strings.HasPrefix(strings.ToLower(r), "wget") })
	if !reached {
		t.Errorf("the FOD did not reach the metadata server (requests %q): the test does not test what it says\n%s", vm.Requests(), log)
	}
	st := status(t, gcs)
	if st.State != gcpvm.Failed {
		t.Errorf("status = %+v", st)
	}
	for where, text := range map[string]string{"status.json": st.Error, "log": log} {
		if strings.Contains(text, keys.line()) || strings.Contains(text, reverse(keys.line())) {
			t.Errorf("%s carries the signing key", where)
		}
	}
	checkDeleted(t, vm)
}

// iso is the custom build's image: named after the user and the build,
// never as the server edition's release.
const iso = "sourceos-custom-server-x86_64-user-7-build-42.iso"

// hostileSpec is the test spec with a snippet whose fixed-output
// derivation runs script.
func hostileSpec(t *testing.T, script string) string {
	t.Helper()
	snippet := fmt.Sprintf(`{ ... }: { loot = derivation { name = "loot"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/bin";
  nonce = "%d"; outputHashMode = "flat"; outputHashAlgo = "sha256";
  outputHash = "0000000000000000000000000000000000000000000000000000000000000000"; args = [ "-c" %q ]; }; }`, time.Now().UnixNano(), script)
	js, err := json.Marshal(map[string]any{"edition": "server", "arch": "x86_64", "hostname": "box-1", "moduleSnippet": snippet})
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

type keyPair struct{ secret, pub string }

func newKeys(t *testing.T) keyPair {
	t.Helper()
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{secret: string(kp.SecretKey), pub: string(kp.PublicKey)}
}

// line is the secret key's key line (what a thief would take).
func (k keyPair) line() string { return strings.Split(strings.TrimSpace(k.secret), "\n")[1] }

// env is the signer's configuration: the keys and what the dispatcher
// vouches for.
func (k keyPair) env() map[string]string {
	return map[string]string{"SOURCEOS_SIGN_SECRET_KEY": k.secret, "SOURCEOS_SIGN_PUBKEY": k.pub,
		"GCS_PREFIX": "gs://" + bucket + "/" + prefix, "VERSION": "1.4.0-signer", "BUILD_ID": "build-42", "BUILD_UID": "user-7"}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

// signBuild runs gcp:attest's code with env as its configuration.
func signBuild(t *testing.T, env map[string]string, specJSON string) error {
	t.Helper()
	if _, ok := env["SOURCEOS_FLAKE"]; !ok {
		env["SOURCEOS_FLAKE"] = testrig.FixtureFlake(t) // the signer's checkout: its catalog
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return lane.Attest(context.Background(), lane.AttestOptions{Cfg: cfg, Spec: []byte(specJSON), TempDir: t.TempDir()})
}

func objects(t *testing.T, gcs *testrig.GCS) []string {
	t.Helper()
	objs, _, err := gcs.Server.ListObjectsWithOptions(bucket, fakestorage.ListOptions{Prefix: prefix + "/"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, strings.TrimPrefix(o.Name, prefix+"/"))
	}
	sort.Strings(out)
	return out
}

// download copies every object of the build's prefix into a directory.
func download(t *testing.T, gcs *testrig.GCS) string {
	t.Helper()
	dir := t.TempDir()
	for _, o := range objects(t, gcs) {
		_, body := gcs.Get(t, bucket, prefix+"/"+o)
		if err := os.WriteFile(filepath.Join(dir, o), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func put(t *testing.T, gcs *testrig.GCS, name string, data []byte) {
	t.Helper()
	gcs.Server.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name}, Content: data})
}

// resetStatus puts the status back to built, as the build left it.
func resetStatus(t *testing.T, gcs *testrig.GCS) {
	t.Helper()
	st := status(t, gcs)
	st.State, st.Error, st.Signed = gcpvm.Built, "", false
	b, _ := json.Marshal(st)
	put(t, gcs, prefix+"/status.json", b)
}

// A build machine that planted a signature beside its image does not keep
// it when the trusted step signs without a key: every sidecar name the
// signing does not write is removed, and the status is the signer's own.
func TestSignerRemovesPlantedSidecars(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	if _, log, err := runVM(t, baseAttrs(t)); err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	put(t, gcs, prefix+"/"+iso+".minisig", []byte("untrusted comment: planted\n"))
	put(t, gcs, prefix+"/"+iso+".intoto.dsse.json", []byte(`{"planted":true}`))
	st := status(t, gcs)
	st.UID, st.Lane, st.Run = "someone-else", "forged lane", "1 <a href=x>"
	b, _ := json.Marshal(st)
	put(t, gcs, prefix+"/status.json", b)
	env := newKeys(t).env()
	delete(env, "SOURCEOS_SIGN_SECRET_KEY")
	delete(env, "SOURCEOS_SIGN_PUBKEY")
	if err := signBuild(t, env, spec); err != nil {
		t.Fatalf("gcp:attest without a key: %v", err)
	}
	got := objects(t, gcs)
	for _, planted := range []string{iso + ".minisig", iso + ".intoto.dsse.json"} {
		if slices.Contains(got, planted) {
			t.Errorf("planted %s kept: %v", planted, got)
		}
	}
	if st := status(t, gcs); st.State != gcpvm.Complete || st.Signed || st.UID != "user-7" || st.Lane != "unknown" || st.Run != "" {
		t.Errorf("status = %+v", st)
	}
}

// checkDetail is the detail of the report's check of that name.
func checkDetail(rep *verify.Report, name string) string {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c.Detail
		}
	}
	return ""
}

// Custom builds signed with a key of their own: the custom signer holds
// SOURCEOS_CUSTOM_SIGN_SECRET_KEY and no release key; what it signs
// verifies with that key as a custom build, and as nothing else.
func TestSignerWithTheCustomBuildsOwnKey(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	if _, log, err := runVM(t, baseAttrs(t)); err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	release, custom := newKeys(t), newKeys(t)
	env := map[string]string{"SOURCEOS_CUSTOM_SIGN_SECRET_KEY": custom.secret, "SOURCEOS_CUSTOM_SIGN_PUBKEY": custom.pub,
		"SOURCEOS_REQUIRE_SIGNATURE": "1", "GCS_PREFIX": "gs://" + bucket + "/" + prefix, "VERSION": "1.4.0",
		"BUILD_ID": "build-42", "BUILD_UID": "user-7"}
	if err := signBuild(t, env, spec); err != nil {
		t.Fatalf("gcp:attest with the custom key: %v", err)
	}
	dir := download(t, gcs)
	artifact := filepath.Join(dir, iso)
	opts := verify.VerifyOptions{Artifact: artifact, PublicKey: release.pub, CustomPublicKey: custom.pub, AllowCustom: true}
	if rep, err := verify.Verify(context.Background(), opts); err != nil || rep.Builder == nil || rep.Builder.Custom == nil {
		t.Fatalf("verify with the custom key: %v %+v", err, rep)
	}
	if _, err := verify.Verify(context.Background(), verify.VerifyOptions{Artifact: artifact, PublicKey: release.pub, AllowCustom: true}); err == nil {
		t.Error("a custom-key signature verified with the release key alone")
	}
	// No key at all: signing fails and says which variable to set.
	resetStatus(t, gcs)
	delete(env, "SOURCEOS_CUSTOM_SIGN_SECRET_KEY")
	if err := signBuild(t, env, spec); err == nil || !strings.Contains(err.Error(), "SOURCEOS_CUSTOM_SIGN_SECRET_KEY") {
		t.Errorf("no key: %v", err)
	}
}
