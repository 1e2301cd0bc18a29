package checks

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"

	"github.com/socioprophet/sourceos/internal/config"
)

// RunStep is one `run:` step of a workflow or composite action.
type RunStep struct {
	File      string
	Line      int
	Job       string // empty in a composite action
	Script    string
	Composite bool
	// Matrix holds the values of the job's matrix rows (include rows too).
	Matrix map[string][]string
	// Env names the variables the step sees from workflow, job and step env.
	Env map[string]bool
}

// Workflow is a parsed workflow file.
type Workflow struct {
	File string // relative to the root
	Src  []byte
	AST  *actionlint.Workflow
}

// ParseWorkflows parses every workflow under root.
func ParseWorkflows(root string) ([]Workflow, error) {
	files, err := WorkflowFiles(root)
	if err != nil {
		return nil, err
	}
	out := make([]Workflow, 0, len(files))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read workflow: %w", err)
		}
		w, errs := actionlint.Parse(src)
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s:%d: %s", rel(root, f), errs[0].Line, errs[0].Message)
		}
		out = append(out, Workflow{File: rel(root, f), Src: src, AST: w})
	}
	return out, nil
}

// RunSteps lists the run steps of the workflows and composite actions.
func RunSteps(root string) ([]RunStep, error) {
	wfs, err := ParseWorkflows(root)
	if err != nil {
		return nil, err
	}
	var out []RunStep
	for _, w := range wfs {
		out = append(out, workflowRunSteps(w)...)
	}
	acts, err := ActionFiles(root)
	if err != nil {
		return nil, err
	}
	for _, f := range acts {
		steps, err := actionRunSteps(root, f)
		if err != nil {
			return nil, err
		}
		out = append(out, steps...)
	}
	return out, nil
}

func workflowRunSteps(w Workflow) []RunStep {
	var out []RunStep
	for _, id := range sortedJobs(w.AST) {
		job := w.AST.Jobs[id]
		matrix := matrixValues(job)
		for _, s := range job.Steps {
			run, ok := s.Exec.(*actionlint.ExecRun)
			if !ok || run.Run == nil {
				continue
			}
			env := map[string]bool{}
			for _, e := range []*actionlint.Env{w.AST.Env, job.Env, s.Env} {
				for _, n := range envNames(e) {
					env[n] = true
				}
			}
			out = append(out, RunStep{File: w.File, Line: run.Run.Pos.Line, Job: id, Script: run.Run.Value, Matrix: matrix, Env: env})
		}
	}
	return out
}

func actionRunSteps(root, path string) ([]RunStep, error) {
	m, err := readAction(path)
	if err != nil {
		return nil, err
	}
	var out []RunStep
	for _, n := range m.Runs.Steps {
		var s struct {
			Run string `yaml:"run"`
		}
		if err := n.Decode(&s); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", rel(root, path), n.Line, err)
		}
		if s.Run != "" {
			out = append(out, RunStep{File: rel(root, path), Line: n.Line, Script: s.Run, Composite: true})
		}
	}
	return out, nil
}

func sortedJobs(w *actionlint.Workflow) []string {
	ids := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func envNames(e *actionlint.Env) []string {
	var out []string
	for _, v := range sortedVars(e) {
		out = append(out, v.Name.Value)
	}
	return out
}

func sortedVars(e *actionlint.Env) []*actionlint.EnvVar {
	if e == nil {
		return nil
	}
	out := make([]*actionlint.EnvVar, 0, len(e.Vars))
	for _, v := range e.Vars {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name.Value < out[j].Name.Value })
	return out
}

func matrixValues(job *actionlint.Job) map[string][]string {
	out := map[string][]string{}
	if job.Strategy == nil || job.Strategy.Matrix == nil {
		return out
	}
	m := job.Strategy.Matrix
	for name, row := range m.Rows {
		for _, v := range row.Values {
			out[name] = append(out[name], scalar(v))
		}
	}
	if m.Include != nil {
		for _, c := range m.Include.Combinations {
			for name, a := range c.Assigns {
				out[name] = append(out[name], scalar(a.Value))
			}
		}
	}
	return out
}

// scalar is the plain value of a YAML scalar (String() quotes it).
func scalar(v actionlint.RawYAMLValue) string {
	if s, ok := v.(*actionlint.RawYAMLString); ok {
		return s.Value
	}
	return v.String()
}

// MageCall is a run line that calls one mage target.
type MageCall struct {
	// Targets are the target names, one per matrix value when the name is
	// built from a matrix value (build:${{ matrix.edition }}).
	Targets []string
	Args    []string
	// Step is the run step the call is in.
	Step RunStep
}

var (
	exprRe   = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)
	matrixRe = regexp.MustCompile(`^matrix\.([A-Za-z_][A-Za-z0-9_-]*)$`)
	targetRe = regexp.MustCompile(`^[a-z][A-Za-z0-9]*(:[a-z][A-Za-z0-9]*)?$`)
	varArgRe = regexp.MustCompile(`^"\$([A-Z_][A-Z0-9_]*)"$`)
	wordRe   = regexp.MustCompile(`^[A-Za-z0-9._/@+=,:-]+$`)
)

// ParseMageCall accepts exactly `mage <target> [args]` on one line. Args are
// plain words or a quoted reference to a variable the step sees ("$NAME").
// The only expressions allowed are matrix values (written in the workflow
// itself); anything else must reach the step through env, never be expanded
// into shell.
func ParseMageCall(s RunStep) (MageCall, error) {
	line := strings.TrimSpace(s.Script)
	if strings.ContainsAny(line, "\n\r") {
		return MageCall{}, fmt.Errorf("more than one line; a pipeline step is one mage call")
	}
	var exprs [][]string // per placeholder: its values
	line = exprRe.ReplaceAllStringFunc(line, func(e string) string {
		inner := exprRe.FindStringSubmatch(e)[1]
		exprs = append(exprs, s.expand(inner))
		return fmt.Sprintf("\x00%d\x00", len(exprs)-1)
	})
	for i, vals := range exprs {
		if vals == nil {
			return MageCall{}, fmt.Errorf("expression %s: only matrix values may appear in a run line; pass other values through env", exprRe.FindAllString(s.Script, -1)[i])
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || fields[0] != "mage" {
		return MageCall{}, fmt.Errorf("not a mage call: %q", strings.TrimSpace(s.Script))
	}
	targets := substitute(fields[1], exprs)
	for _, t := range targets {
		if !targetRe.MatchString(t) {
			return MageCall{}, fmt.Errorf("target %q is not a mage target name", t)
		}
	}
	call := MageCall{Targets: targets}
	for _, a := range fields[2:] {
		if err := s.checkArg(a, exprs); err != nil {
			return MageCall{}, err
		}
		call.Args = append(call.Args, a)
	}
	return call, nil
}

// expand returns the values of a matrix expression, or nil for any other
// expression.
func (s RunStep) expand(expr string) []string {
	m := matrixRe.FindStringSubmatch(expr)
	if m == nil {
		return nil
	}
	return s.Matrix[m[1]]
}

func (s RunStep) checkArg(a string, exprs [][]string) error {
	if m := varArgRe.FindStringSubmatch(a); m != nil {
		if !s.Env[m[1]] {
			return fmt.Errorf("argument %s: %s is not set in the step's env", a, m[1])
		}
		return nil
	}
	for _, v := range substitute(a, exprs) {
		if !wordRe.MatchString(v) {
			return fmt.Errorf("argument %q: only plain words or \"$VAR\" are allowed", v)
		}
	}
	return nil
}

// substitute expands the placeholders of word with every combination of
// their values.
func substitute(word string, exprs [][]string) []string {
	out := []string{word}
	for i, vals := range exprs {
		ph := fmt.Sprintf("\x00%d\x00", i)
		if !strings.Contains(word, ph) {
			continue
		}
		var next []string
		for _, w := range out {
			for _, v := range vals {
				next = append(next, strings.ReplaceAll(w, ph, v))
			}
		}
		out = next
	}
	return out
}

// CheckRunSteps reports every workflow run step that is not one mage call,
// and every composite action run step that is not in allowed (the exact
// lines of plumbing that a composite action may hold, such as compiling
// mage). It returns the mage calls it accepted.
func CheckRunSteps(steps []RunStep, allowed map[string]string) ([]MageCall, []Problem) {
	var calls []MageCall
	var out []Problem
	for _, s := range steps {
		if s.Composite {
			if _, ok := allowed[strings.TrimSpace(s.Script)]; !ok {
				out = append(out, Problem{File: s.File, Line: s.Line, Kind: "mage-only", Message: fmt.Sprintf("composite action run step %q is not an allowed plumbing line", strings.TrimSpace(s.Script))})
			}
			continue
		}
		c, err := ParseMageCall(s)
		if err != nil {
			out = append(out, Problem{File: s.File, Line: s.Line, Kind: "mage-only", Message: fmt.Sprintf("job %s: %v", s.Job, err)})
			continue
		}
		c.Step = s
		calls = append(calls, c)
	}
	return calls, out
}

var secretRe = regexp.MustCompile(`secrets\.([A-Za-z0-9_]+)`)

// CheckEnv reports env variables that internal/config does not declare
// (laneVars names the exceptions: variables a workflow passes to mage as an
// argument), secrets put anywhere but into the config variable of the same
// name, secrets put into a variable that config does not mark secret, and
// any secret in a workflow that pull requests trigger.
func CheckEnv(w Workflow, laneVars map[string]string) []Problem {
	var out []Problem
	inEnv := 0
	envs := []*actionlint.Env{w.AST.Env}
	for _, id := range sortedJobs(w.AST) {
		envs = append(envs, w.AST.Jobs[id].Env)
		for _, s := range w.AST.Jobs[id].Steps {
			envs = append(envs, s.Env)
		}
	}
	for _, e := range envs {
		if e == nil {
			continue
		}
		for _, v := range sortedVars(e) {
			out = append(out, checkVar(w.File, v, laneVars)...)
			inEnv += len(secretRe.FindAllString(v.Value.Value, -1))
		}
	}
	if total := len(secretRe.FindAllString(stripComments(w.Src), -1)); total != inEnv {
		out = append(out, Problem{File: w.File, Line: 1, Kind: "env", Message: fmt.Sprintf("%d secret reference(s) outside env: secrets reach mage only through the variables config declares", total-inEnv)})
	}
	if inEnv > 0 && triggeredByPullRequest(w.AST) {
		out = append(out, Problem{File: w.File, Line: 1, Kind: "env", Message: "a workflow that pull requests trigger must not see signing or cache secrets"})
	}
	return out
}

func checkVar(file string, v *actionlint.EnvVar, laneVars map[string]string) []Problem {
	name, line := v.Name.Value, v.Name.Pos.Line
	decl, declared := config.Lookup(name)
	if _, lane := laneVars[name]; !declared && !lane {
		return []Problem{{File: file, Line: line, Kind: "env", Message: fmt.Sprintf("%s is not a variable internal/config declares", name)}}
	}
	var out []Problem
	for _, m := range secretRe.FindAllStringSubmatch(v.Value.Value, -1) {
		switch {
		case !decl.Secret:
			out = append(out, Problem{File: file, Line: line, Kind: "env", Message: fmt.Sprintf("secret %s put into %s, which config does not mark secret", m[1], name)})
		case m[1] != name:
			out = append(out, Problem{File: file, Line: line, Kind: "env", Message: fmt.Sprintf("%s must come from the secret of the same name, not %s", name, m[1])})
		}
	}
	return out
}

func triggeredByPullRequest(w *actionlint.Workflow) bool {
	for _, e := range w.On {
		if n := e.EventName(); n == "pull_request" || n == "pull_request_target" {
			return true
		}
	}
	return false
}

// stripComments drops YAML comment lines, so prose that mentions secrets
// does not count as a use.
func stripComments(src []byte) string {
	var b strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// CompositePlumbing lists the only shell lines a composite action may run,
// with the reason each is not pipeline work. Everything else is a mage call
// in a workflow.
var CompositePlumbing = map[string]string{
	`go run magefile.go -compile "$RUNNER_TEMP/sourceos-mage/mage"`: "compiles the targets into the binary the steps call (the build VM runs the same binary)",
	`echo "$RUNNER_TEMP/sourceos-mage" >> "$GITHUB_PATH"`:           "puts that binary on PATH for the following steps",
}

// LaneVars are the variables a workflow may set that internal/config does
// not declare, with the reason: they are handed to mage as arguments.
var LaneVars = map[string]string{
	"SOURCEOS_SPEC": "the custom build spec, passed to `mage gcp:custom` as its argument",
}
