package checks_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestWorkflowsAndActionPassActionlint(t *testing.T) {
	sc := testrig.RequireTool(t, "shellcheck")
	root := testrig.RepoRoot(t)
	wfs, err := checks.WorkflowFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := checks.ActionFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(wfs) < 4 || len(acts) < 1 {
		t.Fatalf("want the four lanes' workflows and the setup-nix action, got %v and %v", wfs, acts)
	}
	problems, err := checks.Lint(checks.LintOptions{Root: root, Shellcheck: sc})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// writeRepo makes a repository with the given files (path -> content).
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const testAction = `name: t
description: t
inputs:
  cache-url:
    description: u
    required: false
    default: ""
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "${{ inputs.cache-url }}"
`

func TestLintFindsProblems(t *testing.T) {
	sc := testrig.RequireTool(t, "shellcheck")
	cases := []struct {
		name  string
		files map[string]string
		want  string // regexp over the joined problems
	}{
		{"unknown input of the local action", map[string]string{
			".github/actions/setup-nix/action.yml": testAction,
			".github/workflows/a.yml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n" +
				"      - uses: ./.github/actions/setup-nix\n        with:\n          cache-uri: x\n      - run: mage test\n",
		}, `cache-uri.*not defined`},
		{"shellcheck on a workflow run step", map[string]string{
			".github/workflows/a.yml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: mage test $UNSET_thing\n",
		}, `shellcheck`},
		{"shellcheck inside the composite action", map[string]string{
			".github/actions/x/action.yml": strings.Replace(testAction, `echo "${{ inputs.cache-url }}"`, `cd $RUNNER_TEMP`, 1),
			".github/workflows/a.yml":      "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: mage test\n",
		}, `action\.yml.*shellcheck.*wraps this composite`},
		{"undefined input used in the composite action", map[string]string{
			".github/actions/x/action.yml": strings.Replace(testAction, "inputs.cache-url", "inputs.cache-urll", 1),
			".github/workflows/a.yml":      "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: mage test\n",
		}, `cache-urll`},
		{"composite run step without shell", map[string]string{
			".github/actions/x/action.yml": strings.Replace(testAction, "    - shell: bash\n      run:", "    - run:", 1),
			".github/workflows/a.yml":      "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: mage test\n",
		}, `must name its shell`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := writeRepo(t, c.files)
			problems, err := checks.Lint(checks.LintOptions{Root: root, Shellcheck: sc})
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, p := range problems {
				all = append(all, p.String())
			}
			if !regexp.MustCompile(c.want).MatchString(strings.Join(all, "\n")) {
				t.Errorf("want a problem matching %q, got %q", c.want, all)
			}
		})
	}
}

func TestEveryPipelineStepIsOneMageCall(t *testing.T) {
	root := testrig.RepoRoot(t)
	steps, err := checks.RunSteps(root)
	if err != nil {
		t.Fatal(err)
	}
	calls, problems := checks.CheckRunSteps(steps, checks.CompositePlumbing)
	for _, p := range problems {
		t.Error(p)
	}
	var composite int
	for _, s := range steps {
		if s.Composite {
			composite++
		}
	}
	if composite != len(checks.CompositePlumbing) {
		t.Errorf("the composite action runs %d shell lines, the allowed plumbing is %d", composite, len(checks.CompositePlumbing))
	}
	// The lanes call the pipeline's targets: the catalog's matrix and the
	// builds of its editions, check:contracts, the release's verify
	// gate (release:prepare) and the custom lane.
	var got []string
	for _, c := range calls {
		got = append(got, c.Targets...)
	}
	for _, want := range []string{"catalog:matrix", "build:edition", "check:contracts", "check:flake", "release:prepare", "gcp:custom", "gcp:abandon", "keys:files", "keys:removeFiles"} {
		if !slices.Contains(got, want) {
			t.Errorf("no workflow calls mage %s (calls: %v)", want, got)
		}
	}
}

// The repository follows every rule check:workflows enforces.
func TestRepositoryFollowsEveryWorkflowRule(t *testing.T) {
	root := testrig.RepoRoot(t)
	sc := testrig.RequireTool(t, "shellcheck")
	problems, err := checks.WorkflowRules(root, sc, testrig.RepoCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Each rule catches what it is for, in a repository of one workflow.
func TestWorkflowRulesCatch(t *testing.T) {
	magefile := "//go:build mage\n\npackage main\n\ntype Gcp mg.Namespace\n\n// Custom builds.\nfunc (Gcp) Custom(spec string) error { return nil }\n\n// Test tests.\nfunc Test() error { return nil }\n"
	const head = "on: workflow_dispatch\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
	cases := map[string]struct{ src, kind string }{
		"unknown target": {head + "    steps:\n      - run: mage tset\n", "mage-target"},
		"keys with user code": {head + "    env:\n      SOURCEOS_SIGN_SECRET_KEY: ${{ secrets.SOURCEOS_SIGN_SECRET_KEY }}\n" +
			"      SOURCEOS_SPEC: x\n    steps:\n      - run: mage gcp:custom \"$SOURCEOS_SPEC\"\n", "keys-with-user-code"},
		"unpinned action":            {head + "    steps:\n      - uses: actions/checkout@main\n      - run: mage test\n", "pinned"},
		"editions not the catalog's": {head + "    strategy:\n      matrix:\n        edition: [desktop, server]\n    steps:\n      - run: mage test\n", "catalog-matrix"},
		"unknown arch":               {head + "    strategy:\n      matrix:\n        arch: [x86_64, riscv64]\n    steps:\n      - run: mage test\n", "catalog-matrix"},
		"unknown artifact":           {head + "    strategy:\n      matrix:\n        id: [sourceos-kiosk-iso]\n    steps:\n      - run: mage test\n", "catalog-matrix"},
	}
	for name, c := range cases {
		root := writeRepo(t, map[string]string{".github/workflows/a.yml": c.src, "magefiles/m.go": magefile})
		problems, err := checks.WorkflowRules(root, "", testrig.RepoCatalog(t))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.ContainsFunc(problems, func(p checks.Problem) bool { return p.Kind == c.kind }) {
			t.Errorf("%s: no %s problem in %v", name, c.kind, problems)
		}
	}
}

func TestParseMageCall(t *testing.T) {
	step := func(script string) checks.RunStep {
		return checks.RunStep{Script: script, Env: map[string]bool{"SOURCEOS_SPEC": true},
			Matrix: map[string][]string{"edition": {"desktop", "server"}, "arch": {"x86_64"}}}
	}
	ok := map[string][]string{
		"mage check:contracts":             {"check:contracts"},
		"  mage test\n":                    {"test"},
		"mage build:${{ matrix.edition }}": {"build:desktop", "build:server"},
		`mage gcp:custom "$SOURCEOS_SPEC"`: {"gcp:custom"},
		"mage verify out/sourceos-${{ matrix.edition }}-${{ matrix.arch }}.iso": {"verify"},
	}
	for script, want := range ok {
		c, err := checks.ParseMageCall(step(script))
		if err != nil {
			t.Errorf("%q: %v", script, err)
			continue
		}
		if !slices.Equal(c.Targets, want) {
			t.Errorf("%q: targets %v, want %v", script, c.Targets, want)
		}
	}
	bad := map[string]string{
		"mage build:desktop && mage verify x":                     "plain words",
		"mage build:desktop; rm -rf out":                          "not a mage target name",
		"mage build:desktop | tee log":                            "plain words",
		"mage build:desktop > log":                                "plain words",
		"mage build:desktop\nmage verify x":                       "more than one line",
		"nix build .#foo":                                         "not a mage call",
		"go run magefile.go build:desktop":                        "not a mage call",
		"mage":                                                    "not a mage call",
		"mage gcp:custom '${{ inputs.spec }}'":                    "only matrix values",
		"mage gcp:custom ${{ github.event.client_payload.spec }}": "only matrix values",
		`mage gcp:custom "$(cat spec.json)"`:                      "plain words",
		`mage gcp:custom "$OTHER"`:                                "not set in the step's env",
		"mage gcp:custom $SOURCEOS_SPEC":                          "plain words",
		"mage build:${{ matrix.nope }}":                           "only matrix values",
		"mage Build:Desktop":                                      "not a mage target name",
		"mage verify out/*.iso":                                   "plain words",
	}
	for script, want := range bad {
		_, err := checks.ParseMageCall(step(script))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to say %q", script, err, want)
		}
	}
}

func TestCompositeShellMustBePlumbing(t *testing.T) {
	steps := []checks.RunStep{
		{File: "a/action.yml", Line: 3, Script: `go run magefile.go -compile "$RUNNER_TEMP/sourceos-mage/mage"`, Composite: true},
		{File: "a/action.yml", Line: 9, Script: "echo 'extra-substituters = x' | sudo tee -a /etc/nix/nix.conf", Composite: true},
	}
	_, problems := checks.CheckRunSteps(steps, checks.CompositePlumbing)
	if len(problems) != 1 || problems[0].Line != 9 {
		t.Errorf("problems = %v, want one for line 9", problems)
	}
}

func TestEnvProblems(t *testing.T) {
	const head = "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
	cases := map[string]string{
		"not a variable internal/config declares": head + "    env:\n      SIGNING_KEY: x\n    steps:\n      - run: mage test\n",
		"does not mark secret":                    head + "    env:\n      VERSION: ${{ secrets.VERSION }}\n    steps:\n      - run: mage test\n",
		"secret of the same name":                 head + "    env:\n      SOURCEOS_SIGN_SECRET_KEY: ${{ secrets.KEY }}\n    steps:\n      - run: mage test\n",
		"outside env": head + "    steps:\n      - uses: google-github-actions/auth@v3\n        with:\n" +
			"          credentials_json: ${{ secrets.GCP_KEY }}\n      - run: mage test\n",
		"pull requests trigger": strings.Replace(head, "on: push", "on: pull_request", 1) +
			"    env:\n      NIX_CACHE_SECRET_KEY: ${{ secrets.NIX_CACHE_SECRET_KEY }}\n    steps:\n      - run: mage test\n",
	}
	for want, src := range cases {
		root := writeRepo(t, map[string]string{".github/workflows/a.yml": src})
		wfs, err := checks.ParseWorkflows(root)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, p := range checks.CheckEnv(wfs[0], checks.LaneVars) {
			all = append(all, p.String())
		}
		if !strings.Contains(strings.Join(all, "\n"), want) {
			t.Errorf("want a problem saying %q, got %q", want, all)
		}
	}
}

// Secrets reach a job only through `mage keys:files`: a secret variable in
// a workflow's, a job's or a building step's env is refused, as are key
// files left behind, removed only on success, or readable by an action;
// a job that holds key files builds no user code. The lanes' own shape
// passes.
func TestKeysReachOnlyTheKeyFilesStep(t *testing.T) {
	magefile := "//go:build mage\n\npackage main\n\ntype Gcp mg.Namespace\n\n// Custom builds.\nfunc (Gcp) Custom(spec string) error { return nil }\n\n" +
		"type Keys mg.Namespace\n\n// Files.\nfunc (Keys) Files() error { return nil }\n\n// RemoveFiles.\nfunc (Keys) RemoveFiles() error { return nil }\n\n// Test tests.\nfunc Test() error { return nil }\n"
	const head = "on: workflow_dispatch\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
	const files = "      - env:\n          SOURCEOS_SIGN_SECRET_KEY: ${{ secrets.SOURCEOS_SIGN_SECRET_KEY }}\n        run: mage keys:files\n"
	const remove = "      - if: always()\n        run: mage keys:removeFiles\n"
	cases := map[string]struct{ src, kind string }{
		"lane shape": {head + "    steps:\n      - uses: actions/checkout@v5\n" + files + "      - run: mage test\n" + remove +
			"      - uses: actions/upload-artifact@v4\n        with:\n          path: out\n", ""},
		"secret in the workflow's env": {"on: workflow_dispatch\nenv:\n  NIX_CACHE_SECRET_KEY: ${{ secrets.NIX_CACHE_SECRET_KEY }}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n" +
			"    steps:\n      - run: mage test\n", "keys-env"},
		"secret in the job's env": {head + "    env:\n      NIX_CACHE_SECRET_KEY: ${{ secrets.NIX_CACHE_SECRET_KEY }}\n    steps:\n      - run: mage test\n", "keys-env"},
		"secret in the env of the step that builds": {head + "    steps:\n      - env:\n          SOURCEOS_SIGN_PASSWORD: ${{ secrets.SOURCEOS_SIGN_PASSWORD }}\n" +
			"        run: mage test\n", "keys-env"},
		"key files never removed":           {head + "    steps:\n" + files + "      - run: mage test\n", "keys-files"},
		"key files removed on success only": {head + "    steps:\n" + files + "      - run: mage test\n      - run: mage keys:removeFiles\n", "keys-files"},
		"an action while the files exist": {head + "    steps:\n" + files + "      - uses: actions/upload-artifact@v4\n        with:\n          path: out\n" +
			"      - run: mage test\n" + remove, "keys-files"},
		"key files where user code builds": {head + "    env:\n      SOURCEOS_SPEC: x\n    steps:\n" + files + "      - run: mage gcp:custom \"$SOURCEOS_SPEC\"\n" + remove,
			"keys-with-user-code"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := writeRepo(t, map[string]string{".github/workflows/a.yml": c.src, "magefiles/m.go": magefile})
			problems, err := checks.WorkflowRules(root, "", testrig.RepoCatalog(t))
			if err != nil {
				t.Fatal(err)
			}
			keys := slices.DeleteFunc(slices.Clone(problems), func(p checks.Problem) bool { return !strings.HasPrefix(p.Kind, "keys") })
			if c.kind == "" {
				if len(problems) > 0 {
					t.Errorf("the lane shape is refused: %v", problems)
				}
				return
			}
			if !slices.ContainsFunc(keys, func(p checks.Problem) bool { return p.Kind == c.kind }) {
				t.Errorf("no %s problem in %v", c.kind, problems)
			}
		})
	}
}
