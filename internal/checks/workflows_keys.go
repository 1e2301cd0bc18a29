package checks

import (
	"fmt"
	"strings"

	"github.com/rhysd/actionlint"

	"github.com/socioprophet/sourceos/internal/config"
)

// The targets that hand a job's secrets over as files and take them back.
const (
	KeyFilesTarget       = "keys:files"
	RemoveKeyFilesTarget = "keys:removeFiles"
)

// CheckKeys reports how a workflow hands secrets to mage. The kernel keeps
// the environment a process started with readable by every process of the
// same user (/proc/PID/environ), so a key in a step's environment stays
// readable in that step's shell for as long as the step runs
// (docs/threat-model.md). So:
//   - a secret variable of internal/config is set in no workflow or job
//     env (that reaches every step, actions included), only in the env of
//     a step that runs `mage keys:files`, which writes each to a file and
//     gives the later steps <NAME>_FILE;
//   - a job that runs keys:files runs `mage keys:removeFiles` in a later
//     step that runs always (`if: always()`);
//   - no action (`uses:`) runs while the key files exist.
func CheckKeys(w Workflow) []Problem {
	var out []Problem
	out = append(out, secretVars(w.File, w.AST.Env, "the workflow's env")...)
	for _, id := range sortedJobs(w.AST) {
		job := w.AST.Jobs[id]
		out = append(out, secretVars(w.File, job.Env, "job "+id+"'s env")...)
		out = append(out, checkJobKeys(w.File, id, job)...)
	}
	return out
}

// secretVars reports every secret variable set in env.
func secretVars(file string, env *actionlint.Env, where string) []Problem {
	var out []Problem
	for _, v := range sortedVars(env) {
		if isSecretVar(v.Name.Value) {
			out = append(out, Problem{File: file, Line: v.Name.Pos.Line, Kind: "keys-env",
				Message: fmt.Sprintf("%s in %s reaches every step, the build and third-party actions included: give it only to the step that runs mage %s", v.Name.Value, where, KeyFilesTarget)})
		}
	}
	return out
}

func checkJobKeys(file, job string, j *actionlint.Job) []Problem {
	var out []Problem
	open := 0 // line of the keys:files step while the files exist
	for _, s := range j.Steps {
		target := stepTarget(s)
		line := s.Pos.Line
		if target != KeyFilesTarget {
			for _, v := range sortedVars(s.Env) {
				if isSecretVar(v.Name.Value) {
					out = append(out, Problem{File: file, Line: v.Name.Pos.Line, Kind: "keys-env",
						Message: fmt.Sprintf("job %s: %s is in the env of a step that does not run mage %s; that step's shell would hold it for as long as the step runs: the step gets %s_FILE from mage %s",
							job, v.Name.Value, KeyFilesTarget, v.Name.Value, KeyFilesTarget)})
				}
			}
		}
		switch {
		case target == KeyFilesTarget:
			open = line
		case target == RemoveKeyFilesTarget && open > 0:
			if s.If == nil || !strings.Contains(s.If.Value, "always()") {
				out = append(out, Problem{File: file, Line: line, Kind: "keys-files",
					Message: fmt.Sprintf("job %s: mage %s must run even when a step before it failed (if: always())", job, RemoveKeyFilesTarget)})
			}
			open = 0
		case open > 0:
			if a, ok := s.Exec.(*actionlint.ExecAction); ok && a.Uses != nil {
				out = append(out, Problem{File: file, Line: line, Kind: "keys-files",
					Message: fmt.Sprintf("job %s: action %s runs while the key files of mage %s (line %d) exist; run it before, or after mage %s", job, a.Uses.Value, KeyFilesTarget, open, RemoveKeyFilesTarget)})
			}
		}
	}
	if open > 0 {
		out = append(out, Problem{File: file, Line: open, Kind: "keys-files",
			Message: fmt.Sprintf("job %s runs mage %s but no later step runs mage %s (if: always())", job, KeyFilesTarget, RemoveKeyFilesTarget)})
	}
	return out
}

// stepTarget is the mage target a run step calls (its first word after
// mage), or "".
func stepTarget(s *actionlint.Step) string {
	r, ok := s.Exec.(*actionlint.ExecRun)
	if !ok || r.Run == nil {
		return ""
	}
	f := strings.Fields(r.Run.Value)
	if len(f) < 2 || f[0] != "mage" {
		return ""
	}
	return f[1]
}

// isSecretVar reports whether name is a secret variable of internal/config
// (its value, not its _FILE form).
func isSecretVar(name string) bool {
	v, ok := config.Lookup(name)
	return ok && v.Secret
}

// jobsHoldingKeys names the jobs (file and job id) where a key reaches a
// step: one that runs keys:files or has a secret variable in its env.
func jobsHoldingKeys(calls []MageCall) map[[2]string]string {
	out := map[[2]string]string{}
	for _, c := range calls {
		id := [2]string{c.Step.File, c.Step.Job}
		if keys := keysIn(c.Step.Env); len(keys) > 0 {
			out[id] = strings.Join(keys, ", ")
		}
		for _, t := range c.Targets {
			if t == KeyFilesTarget && out[id] == "" {
				out[id] = "the key files of mage " + KeyFilesTarget
			}
		}
	}
	return out
}
