package contracts

import (
	"io"
	"path/filepath"
	"sort"

	"github.com/rhysd/actionlint"
)

// WorkflowFiles lists the workflow files under .github/workflows.
func WorkflowFiles(root string) []string {
	var out []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// checkWorkflows lints every workflow with actionlint (as a library),
// including the shell of run: steps through shellcheck.
func checkWorkflows(opts Options) Result {
	res := Result{Check: CheckWorkflows}
	files := WorkflowFiles(opts.Root)
	res.Checked = len(files)
	if len(files) == 0 {
		res.Note = "no workflows"
		return res
	}
	errs, err := lintWorkflows(opts, files)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckWorkflows, File: ".github/workflows", Message: "actionlint: " + err.Error()})
		return res
	}
	for _, e := range errs {
		res.Failures = append(res.Failures, ActionlintFailure(opts.Root, e))
	}
	return res
}

func lintWorkflows(opts Options, files []string) ([]*actionlint.Error, error) {
	proj, err := actionlint.NewProject(opts.Root)
	if err != nil {
		return nil, err
	}
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
		Shellcheck: opts.Tools.Shellcheck,
		WorkingDir: opts.Root,
		Color:      actionlint.ColorOptionKindNever,
	})
	if err != nil {
		return nil, err
	}
	return l.LintFiles(files, proj)
}

// ActionlintFailure turns an actionlint error into a report failure.
func ActionlintFailure(root string, e *actionlint.Error) Failure {
	file := e.Filepath
	if filepath.IsAbs(file) {
		if rel, err := filepath.Rel(root, file); err == nil {
			file = rel
		}
	}
	return Failure{Check: CheckWorkflows, File: filepath.ToSlash(file), Line: e.Line,
		Subject: e.Kind, Message: e.Message}
}
