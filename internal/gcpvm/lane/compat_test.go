package lane_test

// The interfaces of the shell pipeline, as its self-serve backend used
// them: the specs it sends, its workflow_dispatch of build-custom.yml (spec,
// uid, build_id, target), the metadata it gives a build VM, and how it
// reads what comes back (status.json's status, lane and artifact; the
// artifact under user-builds/<uid>/<build id>/). Each input goes in
// verbatim; the workflows are read and their expressions evaluated
// (testrig.EvalExpr) for the event the backend sends, so the jobs get
// exactly what GitHub would give them; then the real lanes run with real
// Nix on the fixture flake, the real signer signs, and each output is read
// as the backend reads it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/rhysd/actionlint"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/gcpvm/lane"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

// What the old backend and its workflow used.
const (
	oldBucket = "sourceos-artifacts-socioprophet" // GCS_BUCKET of the old build-custom.yml
	oldUID    = "uid-Xy7"
	oldRunID  = "9876543210"
	// oldSpec is the spec of the old build-custom-image.sh's header, as the
	// backend sends it: services as an object of booleans.
	oldSpec = `{"edition":"server","arch":"x86_64","hostname":"my-host","packages":["htop","tmux"],"services":{"openssh":true,"docker":false},"users":[{"name":"alice","groups":["wheel"]}]}`
)

// oldInput is one input the old build-custom.yml declared.
type oldInput struct {
	typ      string
	required bool
	def      string
	options  []string
}

// oldInputs are the old build-custom.yml's workflow_dispatch inputs.
var oldInputs = map[string]oldInput{
	"spec":     {typ: "string", required: true},
	"uid":      {typ: "string", required: true},
	"build_id": {typ: "string", required: true},
	"target":   {typ: "choice", def: "iso", options: []string{"iso", "netboot"}},
}

// oldStatus is status.json as the old backend reads it.
type oldStatus struct {
	Status   string `json:"status"`
	Lane     string `json:"lane"`
	Artifact string `json:"artifact"`
}

func TestOldBackendCompatibility(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, oldBucket)
	keys := newKeys(t)

	t.Run("workflow_dispatch inputs", func(t *testing.T) {
		wf := readWorkflow(t, "build-custom.yml")
		checkDeclaredInputs(t, wf)
		for _, sent := range []map[string]string{
			{"spec": oldSpec, "uid": oldUID, "build_id": "b1", "target": "iso"},
			{"spec": oldSpec, "uid": oldUID, "build_id": "b1", "target": "netboot"},
			{"spec": oldSpec, "uid": oldUID, "build_id": "b1"},
		} {
			if _, err := acceptDispatch(wf, sent); err != nil {
				t.Errorf("dispatch %v refused: %v", sent, err)
			}
		}
		// The simulation refuses what GitHub refuses.
		for _, sent := range []map[string]string{
			{"spec": oldSpec, "uid": oldUID, "build_id": "b1", "target": "qcow2"},
			{"spec": oldSpec, "uid": oldUID, "build_id": "b1", "tier": "free"},
			{"spec": oldSpec, "uid": oldUID},
		} {
			if _, err := acceptDispatch(wf, sent); err == nil {
				t.Errorf("dispatch %v accepted", sent)
			}
		}
	})

	t.Run("GitHub lane, iso", func(t *testing.T) {
		const id = "bldGhIso1"
		sent := map[string]string{"spec": oldSpec, "uid": oldUID, "build_id": id, "target": "iso"}
		githubLane(t, gcs, keys, sent, "iso")
		checkPublished(t, gcs, keys, published{build: id, lane: "ci", version: "0.0.0-custom", received: oldSpec,
			file: "sourceos-custom-server-x86_64-" + oldUID + "-" + id + ".iso",
			spec: `{"edition":"server","arch":"x86_64","hostname":"my-host","packages":["htop","tmux"],"services":["openssh"],"users":[{"name":"alice","groups":["wheel"]}],"hasSnippet":false}`})
	})

	t.Run("GitHub lane, netboot", func(t *testing.T) {
		const id = "bldGhNet1"
		spec := `{"edition":"edge","hostname":"edge-1","services":{"openssh":true}}`
		sent := map[string]string{"spec": spec, "uid": oldUID, "build_id": id, "target": "netboot"}
		githubLane(t, gcs, keys, sent, "netboot")
		checkPublished(t, gcs, keys, published{build: id, lane: "ci", version: "0.0.0-custom", received: spec, file: sidecar.ManifestName,
			spec: `{"edition":"edge","arch":"x86_64","hostname":"edge-1","packages":[],"services":["openssh"],"users":[],"hasSnippet":false}`})
	})

	t.Run("VM lane, iso", func(t *testing.T) {
		const id = "bldVmIso1"
		spec := `{"packages":["htop"]}` // every default: desktop, x86_64, sourceos
		vmLane(t, gcs, keys, oldMetadata(t, spec, id), spec, "")
		checkPublished(t, gcs, keys, published{build: id, lane: "gcp", version: "26.11", received: spec,
			file: "sourceos-custom-desktop-x86_64-" + oldUID + "-" + id + ".iso",
			spec: `{"edition":"desktop","arch":"x86_64","hostname":"sourceos","packages":["htop"],"services":[],"users":[],"hasSnippet":false}`})
	})

	t.Run("VM lane, netboot", func(t *testing.T) {
		const id = "bldVmNet1"
		spec := `{"edition":"server","services":{"docker":true,"openssh":false}}`
		attrs := oldMetadata(t, spec, id)
		attrs["sourceos-target"] = "netboot"
		vmLane(t, gcs, keys, attrs, spec, "netboot")
		checkPublished(t, gcs, keys, published{build: id, lane: "gcp", version: "26.11", received: spec, file: sidecar.ManifestName,
			spec: `{"edition":"server","arch":"x86_64","hostname":"sourceos","packages":[],"services":["docker"],"users":[],"hasSnippet":false}`})
	})
}

// oldMetadata is the instance metadata the old backend gives a build VM,
// key for key (but startup-script: this test runs the lane in process),
// plus what this lane needs that the old one did not have.
func oldMetadata(t *testing.T, spec, buildID string) map[string]string {
	return map[string]string{
		"sourceos-spec":             spec,
		"sourceos-uid":              oldUID,
		"sourceos-build-id":         buildID,
		"sourceos-gcs-prefix":       oldPrefix(buildID),
		"sourceos-version":          "26.11",
		"sourceos-nix-cache-bucket": "sourceos-nix-cache", // read by nothing here: the VM pushes nothing
		// New: the flake to build (the old VM cloned the repository).
		"sourceos-flake": testrig.FixtureFlake(t),
	}
}

func oldPrefix(buildID string) string {
	return "gs://" + oldBucket + "/user-builds/" + oldUID + "/" + buildID
}

// githubLane runs build-custom.yml for a workflow_dispatch of sent, as
// GitHub would: the build job's runner and env from the workflow, `mage
// gcp:custom "$SOURCEOS_SPEC"`, then the sign job (attest-custom.yml, with
// the inputs the build job's workflow passes) running `mage gcp:attest
// "$SOURCEOS_SPEC"`, reading the status as the old backend does while it
// builds and once built; the caller reads the final one.
func githubLane(t *testing.T, gcs *testrig.GCS, keys keyPair, sent map[string]string, target string) {
	t.Helper()
	wf := readWorkflow(t, "build-custom.yml")
	inputs, err := acceptDispatch(wf, sent)
	if err != nil {
		t.Fatalf("dispatch refused: %v", err)
	}
	ctx := testrig.ExprContext{
		"github": map[string]any{"event_name": "workflow_dispatch", "event": map[string]any{"inputs": inputs},
			"run_id": oldRunID, "sha": strings.Repeat("c", 40), "server_url": "https://github.com", "repository": "SourceOS-Linux/source-os"},
		"inputs": inputs,
		"vars":   map[string]any{"SOURCEOS_ARTIFACTS_BUCKET": oldBucket, "SOURCEOS_SIGN_PUBKEY": keys.pub},
	}
	build := wf.Jobs["build"]
	if runner := interpolate(t, runsOn(t, wf), ctx); runner != "ubuntu-24.04" {
		t.Errorf("runner = %q for an x86_64 spec", runner)
	}
	env := jobEnv(t, wf, "build", ctx)
	prefix := oldPrefix(sent["build_id"])
	if env["TARGET"] != target || env["GCS_PREFIX"] != prefix || env["BUILD_UID"] != oldUID {
		t.Fatalf("build job env: TARGET %q, GCS_PREFIX %q, BUILD_UID %q", env["TARGET"], env["GCS_PREFIX"], env["BUILD_UID"])
	}
	runStep(t, build, `mage gcp:custom "$SOURCEOS_SPEC"`)
	runnerEnv(t, env)
	var during oldStatus
	var log bytes.Buffer
	realBuild := lane.CustomBuild(newDeps(&log), nil)
	err = gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: loadEnv(t, env), Spec: specArg(t, env), Lane: gcpvm.LaneCI,
		Stderr: &log, TempDir: t.TempDir(),
		Build: func(c context.Context, cfg *config.Config, p string) (string, error) {
			during = readOld(t, gcs, prefix)
			return realBuild(c, cfg, p)
		}})
	if err != nil {
		t.Fatalf("gcp:custom: %v\n%s", err, log.String())
	}
	if want := (oldStatus{Status: "building", Lane: "ci"}); during != want {
		t.Errorf("while building, the old backend reads %+v, want %+v", during, want)
	}
	built := readOld(t, gcs, prefix)
	if want := (oldStatus{Status: "building", Lane: "ci"}); built != want {
		t.Errorf("built, before signing, the old backend reads %+v, want %+v", built, want)
	}
	if run := readStatusAt(t, gcs, prefix).Run; run != oldRunID {
		t.Errorf("run = %q, want %q", run, oldRunID)
	}

	// The sign job: the reusable workflow, with what build-custom.yml passes.
	call := wf.Jobs["attest"].WorkflowCall
	if call == nil || call.Uses.Value != "./.github/workflows/attest-custom.yml" {
		t.Fatalf("build-custom.yml's sign job does not call attest-custom.yml")
	}
	swf := readWorkflow(t, "attest-custom.yml")
	ctx["inputs"] = callInputs(t, swf, call, ctx)
	senv := jobEnv(t, swf, "attest", ctx)
	runStep(t, swf.Jobs["attest"], `mage gcp:attest "$SOURCEOS_SPEC"`)
	signWith(t, keys, senv)
}

// vmLane runs the VM lane on attrs, then the signer as attest-custom.yml
// runs it when dispatched (repository_dispatch sourceos-custom-attest) with
// the same spec text as the metadata's and the version the VM was given,
// reading the status as the old backend does once built; the caller reads
// the final one.
func vmLane(t *testing.T, gcs *testrig.GCS, keys keyPair, attrs map[string]string, spec, target string) {
	t.Helper()
	vm, log, err := runVM(t, attrs)
	if err != nil {
		t.Fatalf("gcp:build: %v\n%s", err, log)
	}
	checkDeleted(t, vm)
	prefix := attrs["sourceos-gcs-prefix"]
	built := readOld(t, gcs, prefix)
	if want := (oldStatus{Status: "building", Lane: "gcp"}); built != want {
		t.Errorf("built, before signing, the old backend reads %+v, want %+v", built, want)
	}
	payload := map[string]any{"spec": spec, "uid": oldUID, "build_id": attrs["sourceos-build-id"]}
	if target != "" {
		payload["target"] = target
	}
	if target == "netboot" {
		// Without the version the VM was given, the signer's own differs
		// from the one in the manifest: refused before signing, with why.
		err := trySign(t, keys, signEnv(t, payload, keys))
		if err == nil || !strings.Contains(err.Error(), `the build stamped version "26.11"`) {
			t.Fatalf("gcp:attest with another version: %v", err)
		}
		if got := readOld(t, gcs, prefix); got.Status != "error" || got.Artifact != "" {
			t.Errorf("failed signing: the old backend reads %+v", got)
		}
		rebuilt(t, prefix)
	}
	payload["version"] = attrs["sourceos-version"]
	env := signEnv(t, payload, keys)
	if env["GCS_PREFIX"] != prefix || env["TARGET"] != cmpOr(target, "iso") || env["VERSION"] != "26.11" {
		t.Fatalf("sign job env: GCS_PREFIX %q, TARGET %q, VERSION %q", env["GCS_PREFIX"], env["TARGET"], env["VERSION"])
	}
	signWith(t, keys, env)
}

// signEnv is the env of attest-custom.yml's job when dispatched with payload.
func signEnv(t *testing.T, payload map[string]any, keys keyPair) map[string]string {
	t.Helper()
	ctx := testrig.ExprContext{
		"github": map[string]any{"event_name": "repository_dispatch", "event": map[string]any{"action": "sourceos-custom-attest", "client_payload": payload},
			"run_id": oldRunID, "sha": strings.Repeat("c", 40), "server_url": "https://github.com", "repository": "SourceOS-Linux/source-os"},
		"inputs": map[string]any{},
		"vars":   map[string]any{"SOURCEOS_ARTIFACTS_BUCKET": oldBucket, "SOURCEOS_SIGN_PUBKEY": keys.pub},
	}
	swf := readWorkflow(t, "attest-custom.yml")
	runStep(t, swf.Jobs["attest"], `mage gcp:attest "$SOURCEOS_SPEC"`)
	return jobEnv(t, swf, "attest", ctx)
}

// rebuilt puts a build's status back to built, as the build left it.
func rebuilt(t *testing.T, prefix string) {
	t.Helper()
	store, err := blob.Open(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := gcpvm.ReadStatus(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	st.State, st.Error = gcpvm.Built, ""
	if err := gcpvm.WriteStatus(context.Background(), store, st); err != nil {
		t.Fatal(err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// signWith runs gcp:attest's code with a sign job's env, plus the key (from
// keys:files) and what the runner sets.
func signWith(t *testing.T, keys keyPair, env map[string]string) {
	t.Helper()
	if err := trySign(t, keys, env); err != nil {
		t.Fatalf("gcp:attest: %v", err)
	}
}

// trySign is signWith, returning the error.
func trySign(t *testing.T, keys keyPair, env map[string]string) error {
	t.Helper()
	runnerEnv(t, env)
	env["SOURCEOS_SIGN_SECRET_KEY"] = keys.secret
	var log bytes.Buffer
	err := lane.Attest(context.Background(), lane.AttestOptions{Cfg: loadEnv(t, env), Spec: specArg(t, env), TempDir: t.TempDir(),
		Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, log.String())
	}
	return nil
}

// runnerEnv adds what a GitHub runner sets, and points the flake at the
// fixture (a job builds its checkout).
func runnerEnv(t *testing.T, env map[string]string) {
	env["CI"], env["GITHUB_RUN_ID"] = "true", oldRunID
	env["SOURCEOS_FLAKE"], env["OUT"] = testrig.FixtureFlake(t), t.TempDir()
}

// published is what a lane left, and what should be there.
type published struct {
	build    string
	lane     string
	received string // the spec as the backend sent it
	file     string // the artifact's main file
	spec     string // the normalised spec
	version  string // what the provenance says
}

// checkPublished reads the build's prefix as the old backend does: the
// final status, the artifact it names, its checksum file; then verifies
// the signed artifact and its provenance as a user would.
func checkPublished(t *testing.T, gcs *testrig.GCS, keys keyPair, p published) {
	t.Helper()
	prefix := oldPrefix(p.build)
	url := prefix + "/" + p.file
	if got, want := readOld(t, gcs, prefix), (oldStatus{Status: "complete", Lane: p.lane, Artifact: url}); got != want {
		t.Fatalf("signed: the old backend reads %+v, want %+v", got, want)
	}
	object := strings.TrimPrefix(url, "gs://"+oldBucket+"/")
	if !strings.HasPrefix(object, "user-builds/"+oldUID+"/"+p.build+"/") {
		t.Fatalf("artifact %s is not under user-builds/<uid>/<build id>/", url)
	}
	code, body := gcs.Get(t, oldBucket, object)
	if code != http.StatusOK {
		t.Fatalf("%s: HTTP %d", url, code)
	}
	sum := sha256.Sum256(body)
	if _, line := gcs.Get(t, oldBucket, object+".sha256"); string(line) != hex.EncodeToString(sum[:])+"  "+p.file+"\n" {
		t.Errorf("%s.sha256 = %q", url, line)
	}
	dir := downloadPrefix(t, gcs, strings.TrimPrefix(prefix, "gs://"+oldBucket+"/"))
	rep, err := verify.Verify(context.Background(), verify.VerifyOptions{Artifact: filepath.Join(dir, p.file), PublicKey: keys.pub, ExpectBuildID: p.build})
	if err != nil {
		t.Fatalf("verify %s: %v", p.file, err)
	}
	received := sha256.Sum256([]byte(p.received))
	if c := rep.Builder.Custom; c == nil || c.User != oldUID || c.BuildID != p.build || c.SpecSHA256 != hex.EncodeToString(received[:]) {
		t.Errorf("provenance's custom build = %+v, want user %s, build %s, the digest of the spec as sent", c, oldUID, p.build)
	}
	slsa, err := os.ReadFile(filepath.Join(dir, p.file+sidecar.ExtSLSA))
	if err != nil {
		t.Fatal(err)
	}
	pred, err := provenance.ParsePredicate(slsa)
	if err != nil {
		t.Fatalf("%s: %v", p.file+sidecar.ExtSLSA, err)
	}
	if pred.Build.Version != p.version {
		t.Errorf("provenance's version = %q, want %q", pred.Build.Version, p.version)
	}
	var got, want any
	if pred.Build.Custom == nil || json.Unmarshal(pred.Build.Custom.Spec, &got) != nil || json.Unmarshal([]byte(p.spec), &want) != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("provenance's spec = %v\nwant the normalised %s", got, p.spec)
	}
}

func readOld(t *testing.T, gcs *testrig.GCS, prefix string) oldStatus {
	t.Helper()
	var st oldStatus
	if err := json.Unmarshal(readStatusBytes(t, gcs, prefix), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func readStatusAt(t *testing.T, gcs *testrig.GCS, prefix string) gcpvm.Status {
	t.Helper()
	var st gcpvm.Status
	if err := json.Unmarshal(readStatusBytes(t, gcs, prefix), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func readStatusBytes(t *testing.T, gcs *testrig.GCS, prefix string) []byte {
	t.Helper()
	bucket, object, _ := strings.Cut(strings.TrimPrefix(prefix, "gs://"), "/")
	code, body := gcs.Get(t, bucket, object+"/status.json")
	if code != http.StatusOK {
		t.Fatalf("%s/status.json: HTTP %d", prefix, code)
	}
	return body
}

func downloadPrefix(t *testing.T, gcs *testrig.GCS, prefix string) string {
	t.Helper()
	objs, _, err := gcs.Server.ListObjectsWithOptions(oldBucket, fakestorage.ListOptions{Prefix: prefix + "/"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, o := range objs {
		_, body := gcs.Get(t, oldBucket, o.Name)
		if err := os.WriteFile(filepath.Join(dir, strings.TrimPrefix(o.Name, prefix+"/")), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newDeps(log *bytes.Buffer) lane.Deps {
	return func(cfg *config.Config) image.Deps {
		red := cfg.Redactor()
		w := red.Writer(log)
		return image.Deps{Cfg: cfg, Run: &execx.Exec{SecretNames: config.SecretNames(), Redactor: red, Log: w},
			Log: slog.New(slog.NewTextHandler(w, nil)), Stream: w}
	}
}

func loadEnv(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func specArg(t *testing.T, env map[string]string) []byte {
	t.Helper()
	b, err := gcpvm.SpecArg(env["SOURCEOS_SPEC"])
	if err != nil {
		t.Fatalf("SOURCEOS_SPEC %q: %v", env["SOURCEOS_SPEC"], err)
	}
	return b
}

func readWorkflow(t *testing.T, name string) *actionlint.Workflow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testrig.RepoRoot(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	wf, errs := actionlint.Parse(b)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", name, errs[0])
	}
	return wf
}

func interpolate(t *testing.T, value string, ctx testrig.ExprContext) string {
	t.Helper()
	s, err := testrig.Interpolate(value, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jobEnv is the env a job's steps get: the workflow's, then the job's.
func jobEnv(t *testing.T, wf *actionlint.Workflow, job string, ctx testrig.ExprContext) map[string]string {
	t.Helper()
	j := wf.Jobs[job]
	if j == nil {
		t.Fatalf("no job %s", job)
	}
	env := map[string]string{}
	for _, e := range []*actionlint.Env{wf.Env, j.Env} {
		if e == nil {
			continue
		}
		for _, v := range e.Vars {
			env[v.Name.Value] = interpolate(t, v.Value.Value, ctx)
		}
	}
	return env
}

// runsOn is the build job's runs-on expression.
func runsOn(t *testing.T, wf *actionlint.Workflow) string {
	t.Helper()
	r := wf.Jobs["build"].RunsOn
	if r == nil || r.LabelsExpr == nil {
		t.Fatal("the build job's runs-on is not an expression: it cannot depend on the spec's arch")
	}
	return r.LabelsExpr.Value
}

// runStep fails unless the job has a step that runs exactly cmd.
func runStep(t *testing.T, j *actionlint.Job, cmd string) {
	t.Helper()
	for _, s := range j.Steps {
		if r, ok := s.Exec.(*actionlint.ExecRun); ok && r.Run != nil && strings.TrimSpace(r.Run.Value) == cmd {
			return
		}
	}
	t.Fatalf("job %s has no step `%s`", j.ID.Value, cmd)
}

func dispatchEvent(t *testing.T, wf *actionlint.Workflow) *actionlint.WorkflowDispatchEvent {
	t.Helper()
	for _, e := range wf.On {
		if d, ok := e.(*actionlint.WorkflowDispatchEvent); ok {
			return d
		}
	}
	t.Fatal("no workflow_dispatch trigger")
	return nil
}

var inputTypes = map[actionlint.WorkflowDispatchEventInputType]string{
	actionlint.WorkflowDispatchEventInputTypeNone: "string", actionlint.WorkflowDispatchEventInputTypeString: "string",
	actionlint.WorkflowDispatchEventInputTypeChoice: "choice", actionlint.WorkflowDispatchEventInputTypeBoolean: "boolean",
	actionlint.WorkflowDispatchEventInputTypeNumber: "number", actionlint.WorkflowDispatchEventInputTypeEnvironment: "environment",
}

// checkDeclaredInputs requires the workflow_dispatch inputs of the old
// workflow, and no other.
func checkDeclaredInputs(t *testing.T, wf *actionlint.Workflow) {
	t.Helper()
	declared := dispatchEvent(t, wf).Inputs
	for name, want := range oldInputs {
		in := declared[name]
		if in == nil {
			t.Errorf("input %s is not declared", name)
			continue
		}
		got := oldInput{typ: inputTypes[in.Type], required: in.Required != nil && in.Required.Value}
		if in.Default != nil {
			got.def = in.Default.Value
		}
		for _, o := range in.Options {
			got.options = append(got.options, o.Value)
		}
		if got.typ != want.typ || got.required != want.required || got.def != want.def || !slices.Equal(got.options, want.options) {
			t.Errorf("input %s = %+v, the old workflow's %+v", name, got, want)
		}
	}
	for name := range declared {
		if _, ok := oldInputs[name]; !ok {
			t.Errorf("input %s is new: the old backend does not send it", name)
		}
	}
}

// acceptDispatch checks sent as GitHub checks a workflow_dispatch (every
// input declared, required ones given, a choice among its options) and
// returns the inputs context the run gets (defaults filled in).
func acceptDispatch(wf *actionlint.Workflow, sent map[string]string) (map[string]any, error) {
	declared := map[string]*actionlint.DispatchInput{}
	for _, e := range wf.On {
		if d, ok := e.(*actionlint.WorkflowDispatchEvent); ok {
			declared = d.Inputs
		}
	}
	out := map[string]any{}
	for name, v := range sent {
		in := declared[strings.ToLower(name)]
		if in == nil {
			return nil, fmt.Errorf("unexpected input %q", name)
		}
		if in.Type == actionlint.WorkflowDispatchEventInputTypeChoice &&
			!slices.ContainsFunc(in.Options, func(o *actionlint.String) bool { return o.Value == v }) {
			return nil, fmt.Errorf("input %s: %q is not one of its options", name, v)
		}
		out[in.Name.Value] = v
	}
	for _, in := range declared {
		if _, ok := out[in.Name.Value]; ok {
			continue
		}
		if in.Required != nil && in.Required.Value {
			return nil, fmt.Errorf("required input %s not provided", in.Name.Value)
		}
		if in.Default != nil {
			out[in.Name.Value] = in.Default.Value
		} else {
			out[in.Name.Value] = ""
		}
	}
	return out, nil
}

// callInputs is the inputs context of a reusable workflow: the caller's
// with: values, evaluated in the caller's context, and the defaults.
func callInputs(t *testing.T, called *actionlint.Workflow, call *actionlint.WorkflowCall, ctx testrig.ExprContext) map[string]any {
	t.Helper()
	var ev *actionlint.WorkflowCallEvent
	for _, e := range called.On {
		if c, ok := e.(*actionlint.WorkflowCallEvent); ok {
			ev = c
		}
	}
	if ev == nil {
		t.Fatal("the called workflow has no workflow_call trigger")
	}
	out := map[string]any{}
	for _, in := range ev.Inputs {
		if w, ok := call.Inputs[strings.ToLower(in.Name.Value)]; ok {
			out[in.Name.Value] = interpolate(t, w.Value.Value, ctx)
		} else if in.Default != nil {
			out[in.Name.Value] = in.Default.Value
		} else if in.IsRequired() {
			t.Fatalf("the caller does not pass the required input %s", in.Name.Value)
		}
	}
	for name := range call.Inputs {
		if !slices.ContainsFunc(ev.Inputs, func(in *actionlint.WorkflowCallEventInput) bool { return strings.EqualFold(in.Name.Value, name) }) {
			t.Fatalf("the caller passes %s, which the called workflow does not declare", name)
		}
	}
	return out
}

// The build job's runner for each way a spec arrives, with the arch it
// asks for: the native arm64 runner for aarch64 only (docs/lanes.md has
// this table).
func TestRunnerForArch(t *testing.T) {
	expr := runsOn(t, readWorkflow(t, "build-custom.yml"))
	const arm, x86 = "ubuntu-24.04-arm", "ubuntu-24.04"
	dispatch := func(spec string) testrig.ExprContext {
		in := map[string]any{"spec": spec, "uid": oldUID, "build_id": "b1", "target": "iso"}
		return testrig.ExprContext{"github": map[string]any{"event_name": "workflow_dispatch", "event": map[string]any{"inputs": in}}, "inputs": in}
	}
	repo := func(spec any) testrig.ExprContext {
		return testrig.ExprContext{"github": map[string]any{"event_name": "repository_dispatch",
			"event": map[string]any{"client_payload": map[string]any{"spec": spec, "uid": oldUID, "build_id": "b1"}}}, "inputs": map[string]any{}}
	}
	var object map[string]any
	_ = json.Unmarshal([]byte(`{"edition":"server","arch":"aarch64"}`), &object)
	cases := []struct {
		name string
		ctx  testrig.ExprContext
		want string
	}{
		{"dispatch, aarch64", dispatch(`{"edition":"server","arch":"aarch64","hostname":"pi"}`), arm},
		{"dispatch, x86_64", dispatch(oldSpec), x86},
		{"dispatch, no arch", dispatch(`{"packages":["htop"]}`), x86},
		{"dispatch, aarch64 only as a host name", dispatch(`{"hostname":"aarch64"}`), x86},
		{"payload object, aarch64", repo(object), arm},
		{"payload object, no arch", repo(map[string]any{"edition": "server"}), x86},
		{"payload string, aarch64", repo(`{"edition":"server","arch":"aarch64"}`), arm},
		{"payload string, x86_64", repo(`{"arch":"x86_64"}`), x86},
		{"payload string, no arch", repo(`{}`), x86},
	}
	for _, c := range cases {
		c.ctx["vars"] = map[string]any{}
		got, err := testrig.Interpolate(expr, c.ctx)
		if err != nil || got != c.want {
			t.Errorf("%s: runs-on = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}
