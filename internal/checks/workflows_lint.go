package checks

// Lint is actionlint over every workflow and composite action (with
// shellcheck on the shell of `run:` steps). Composite actions are not
// workflows, so actionlint does not lint them on its own; Lint wraps each
// action's steps in a workflow_call workflow (its inputs become the
// workflow's inputs) and lints that. The other rules of the GitHub lane are
// in workflows_steps.go and workflows.go.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v4"
)

// Directories under the repository root.
const (
	WorkflowsDir = ".github/workflows"
	ActionsDir   = ".github/actions"
)

// Problem is one finding.
type Problem struct {
	File    string // relative to the repository root
	Line    int
	Kind    string // the actionlint rule, or "mage-only", "env", "composite"
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: [%s] %s", p.File, p.Line, p.Kind, p.Message)
}

// LintOptions configures Lint.
type LintOptions struct {
	// Root is the repository root.
	Root string
	// Shellcheck is the shellcheck executable; empty skips the shell checks.
	Shellcheck string
}

// WorkflowFiles lists the workflow files under root, sorted.
func WorkflowFiles(root string) ([]string, error) {
	return yamlFiles(filepath.Join(root, WorkflowsDir), false)
}

// ActionFiles lists the action.yml/action.yaml files under root, sorted.
func ActionFiles(root string) ([]string, error) {
	files, err := yamlFiles(filepath.Join(root, ActionsDir), true)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, f := range files {
		if b := filepath.Base(f); b == "action.yml" || b == "action.yaml" {
			out = append(out, f)
		}
	}
	return out, err
}

func yamlFiles(dir string, recursive bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && !recursive {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(out)
	return out, nil
}

// Lint runs actionlint over every workflow and every composite action.
func Lint(o LintOptions) ([]Problem, error) {
	proj, err := actionlint.NewProject(o.Root)
	if err != nil {
		return nil, fmt.Errorf("actionlint project: %w", err)
	}
	wfs, err := WorkflowFiles(o.Root)
	if err != nil {
		return nil, err
	}
	acts, err := ActionFiles(o.Root)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, f := range wfs {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read workflow: %w", err)
		}
		ps, err := lintOne(o, proj, rel(o.Root, f), src, "")
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	for _, f := range acts {
		ps, err := lintAction(o, proj, f)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// lintOne lints one workflow's source. note is added to every message (it
// says where a synthesized workflow came from).
func lintOne(o LintOptions, proj *actionlint.Project, name string, src []byte, note string) ([]Problem, error) {
	l, err := actionlint.NewLinter(discard{}, &actionlint.LinterOptions{
		Shellcheck: o.Shellcheck,
		WorkingDir: o.Root,
	})
	if err != nil {
		return nil, fmt.Errorf("actionlint: %w", err)
	}
	errs, err := l.Lint(filepath.Join(o.Root, name), src, proj)
	if err != nil {
		return nil, fmt.Errorf("actionlint %s: %w", name, err)
	}
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		out = append(out, Problem{File: name, Line: e.Line, Kind: e.Kind, Message: e.Message + note})
	}
	return out, nil
}

// actionMeta is what Lint needs of an action.yml.
type actionMeta struct {
	Name   string                    `yaml:"name"`
	Inputs map[string]map[string]any `yaml:"inputs"`
	Runs   struct {
		Using string      `yaml:"using"`
		Steps []yaml.Node `yaml:"steps"`
	} `yaml:"runs"`
}

func readAction(path string) (*actionMeta, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read action: %w", err)
	}
	var m actionMeta
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &m, nil
}

// lintAction lints a composite action as a workflow_call workflow and checks
// what actionlint cannot see in that form (every run step names its shell).
func lintAction(o LintOptions, proj *actionlint.Project, path string) ([]Problem, error) {
	name := rel(o.Root, path)
	m, err := readAction(path)
	if err != nil {
		return nil, err
	}
	if m.Runs.Using != "composite" {
		return []Problem{{File: name, Line: 1, Kind: "composite", Message: fmt.Sprintf("runs.using is %q; only composite actions are expected here", m.Runs.Using)}}, nil
	}
	var out []Problem
	steps := make([]map[string]any, 0, len(m.Runs.Steps))
	for _, n := range m.Runs.Steps {
		var s map[string]any
		if err := n.Decode(&s); err != nil {
			return nil, fmt.Errorf("%s:%d: step: %w", name, n.Line, err)
		}
		if _, isRun := s["run"]; isRun && s["shell"] == nil {
			out = append(out, Problem{File: name, Line: n.Line, Kind: "composite", Message: "a composite action's run step must name its shell"})
		}
		steps = append(steps, s)
	}
	src, err := synthesize(m, steps)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ps, err := lintOne(o, proj, name, src, " (in the workflow that wraps this composite action's steps)")
	if err != nil {
		return nil, err
	}
	return append(out, ps...), nil
}

// synthesize wraps a composite action's steps in a workflow_call workflow
// whose inputs are the action's inputs, so that actionlint checks the steps,
// their expressions and their shell.
func synthesize(m *actionMeta, steps []map[string]any) ([]byte, error) {
	inputs := map[string]any{}
	for k := range m.Inputs {
		inputs[k] = map[string]any{"type": "string", "required": false}
	}
	on := map[string]any{"workflow_call": map[string]any{}}
	if len(inputs) > 0 {
		on["workflow_call"] = map[string]any{"inputs": inputs}
	}
	wf := map[string]any{
		"name": "composite action " + m.Name,
		"on":   on,
		"jobs": map[string]any{
			"action": map[string]any{"runs-on": "ubuntu-24.04", "steps": steps},
		},
	}
	b, err := yaml.Marshal(wf)
	if err != nil {
		return nil, fmt.Errorf("synthesize workflow: %w", err)
	}
	return b, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
