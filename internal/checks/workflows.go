package checks

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
)

// checkWorkflows is check:workflows: every rule the GitHub lane follows,
// one failure per problem.
func checkWorkflows(opts Options, cat *catalog.Catalog) Result {
	res := Result{Check: CheckWorkflows}
	files, err := WorkflowFiles(opts.Root)
	if err != nil || len(files) == 0 {
		res.Note = "no workflows"
		return res
	}
	res.Checked = len(files)
	problems, err := WorkflowRules(opts.Root, opts.Tools.Shellcheck, cat)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckWorkflows, File: WorkflowsDir, Message: err.Error()})
		return res
	}
	for _, p := range problems {
		res.Failures = append(res.Failures, Failure{Check: CheckWorkflows, File: p.File, Line: p.Line, Subject: p.Kind, Message: p.Message})
	}
	return res
}

// WorkflowRules runs every rule over the workflows and composite actions
// under root:
//   - actionlint (shellcheck on run: steps when shellcheck is given), the
//     composite actions included;
//   - every run: step of a workflow is one mage call of a target magefiles/
//     declares, and a composite action runs only the allowed plumbing;
//   - a job that holds a signing or cache key runs no target that builds
//     user-supplied code (docs/threat-model.md);
//   - env holds config variables only, secrets only in the secret variable
//     of the same name, and no secret where pull requests trigger;
//   - secrets reach only the step that runs `mage keys:files`; the others
//     get <NAME>_FILE, and the files are removed (CheckKeys);
//   - third-party actions are pinned to a release tag;
//   - a matrix of editions, arches, kinds or artifact ids is the catalog's
//     (when cat is not nil).
func WorkflowRules(root, shellcheck string, cat *catalog.Catalog) ([]Problem, error) {
	out, err := Lint(LintOptions{Root: root, Shellcheck: shellcheck})
	if err != nil {
		return nil, err
	}
	steps, err := RunSteps(root)
	if err != nil {
		return nil, err
	}
	calls, problems := CheckRunSteps(steps, CompositePlumbing)
	out = append(out, problems...)
	targets, err := MageTargets(root + "/magefiles")
	if err != nil {
		return nil, err
	}
	out = append(out, checkCalls(calls, targets)...)
	wfs, err := ParseWorkflows(root)
	if err != nil {
		return nil, err
	}
	for _, w := range wfs {
		out = append(out, CheckEnv(w, LaneVars)...)
		out = append(out, CheckKeys(w)...)
	}
	if cat != nil {
		out = append(out, checkMatrices(wfs, cat)...)
	}
	pins, err := checkPinned(root)
	return append(out, pins...), err
}

// UntrustedTargets build user-supplied Nix code: no key may be in their job.
var UntrustedTargets = []string{"build:custom", "gcp:custom", "gcp:build"}

// checkCalls reports calls of targets magefiles/ does not declare, and
// untrusted targets in a job that holds a key (in a step's env, or as the
// files of keys:files).
func checkCalls(calls []MageCall, targets []string) []Problem {
	var out []Problem
	holding := jobsHoldingKeys(calls)
	for _, c := range calls {
		for _, tg := range c.Targets {
			tg = strings.ToLower(tg)
			if !slices.Contains(targets, tg) {
				out = append(out, Problem{File: c.Step.File, Line: c.Step.Line, Kind: "mage-target",
					Message: fmt.Sprintf("mage %s: magefiles/ declares no such target", tg)})
			}
			if slices.Contains(UntrustedTargets, tg) {
				if keys := holding[[2]string{c.Step.File, c.Step.Job}]; keys != "" {
					out = append(out, Problem{File: c.Step.File, Line: c.Step.Line, Kind: "keys-with-user-code",
						Message: fmt.Sprintf("job %s runs mage %s (user-supplied code) and holds %s", c.Step.Job, tg, keys)})
				}
			}
		}
	}
	return out
}

// keysIn names the secret variables of env.
func keysIn(env map[string]bool) []string {
	var out []string
	for name := range env {
		if v, ok := config.Lookup(name); ok && v.Secret {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

var (
	usesRe = regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)`)
	// pinnedRe: owner/repo[/path]@vN[.N…], a local action, or a local
	// reusable workflow (this repository's own files at the commit run).
	pinnedRe = regexp.MustCompile(`^([A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@v\d+(\.\d+)*|\./\.github/actions/[a-z0-9-]+|\./\.github/workflows/[a-z0-9-]+\.ya?ml)$`)
)

// checkPinned reports uses: that are not pinned to a release tag.
func checkPinned(root string) ([]Problem, error) {
	wfs, err := WorkflowFiles(root)
	if err != nil {
		return nil, err
	}
	acts, err := ActionFiles(root)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, f := range append(wfs, acts...) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := usesRe.FindStringSubmatch(line); m != nil && !pinnedRe.MatchString(m[1]) {
				out = append(out, Problem{File: rel(root, f), Line: i + 1, Kind: "pinned",
					Message: fmt.Sprintf("uses %s is not pinned to a release tag", m[1])})
			}
		}
	}
	return out, nil
}
