package checks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/socioprophet/sourceos/internal/execx"
)

// ShellcheckComment is one finding of `shellcheck -f json1`.
type ShellcheckComment struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Level   string `json:"level"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ParseShellcheckJSON1 decodes shellcheck's json1 output.
func ParseShellcheckJSON1(b []byte) ([]ShellcheckComment, error) {
	var out struct {
		Comments []ShellcheckComment `json:"comments"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode shellcheck json1 output: %w", err)
	}
	return out.Comments, nil
}

// ShellcheckCmd checks files (relative to dir) at severity warning and above.
func ShellcheckCmd(shellcheck, dir string, files []string) execx.Cmd {
	return execx.Cmd{Name: shellcheck, Dir: dir,
		Args: append([]string{"--severity=warning", "--format=json1", "--external-sources"}, files...)}
}

var shellShebang = regexp.MustCompile(`^#!\s*(?:/usr/bin/env\s+(?:-S\s+)?)?(?:\S*/)?(?:sh|bash|dash|ksh)(?:\s|$)`)

// IsShellScript reports whether a file is a shell script: a .sh or .bash
// file, or an extensionless file whose first line is a sh/bash/dash/ksh
// shebang.
func IsShellScript(name string, head []byte) bool {
	switch filepath.Ext(name) {
	case ".sh", ".bash":
		return true
	case "":
		line, _, _ := bytes.Cut(head, []byte("\n"))
		return shellShebang.Match(line)
	}
	return false
}

// ShellScripts lists the repository's shell scripts.
func ShellScripts(root string) ([]string, error) {
	return repoFiles(root, func(rel string, d fs.DirEntry) bool {
		return IsShellScript(d.Name(), readHead(filepath.Join(root, rel)))
	})
}

func readHead(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	return buf[:n]
}

var directive = regexp.MustCompile(`^\s*#\s*shellcheck\s+(.*)$`)

// UnreasonedDisables finds `# shellcheck disable=...` directives that do
// not say why: a reason is a comment after the directive on its line
// (`# shellcheck disable=SC2034  # kept for diagnostics`) or a plain comment
// on the line just above it.
func UnreasonedDisables(file string, src []byte) []Failure {
	var out []Failure
	prevComment := false
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := directive.FindStringSubmatch(line)
		if m != nil && strings.Contains(m[1], "disable=") && !hasReason(m[1]) && !prevComment {
			out = append(out, Failure{Check: CheckShell, File: file, Line: n, Subject: "shellcheck directive",
				Message: "a disable directive needs a reason", Expected: "# shellcheck disable=SCnnnn  # reason",
				Found: strings.TrimSpace(line)})
		}
		trimmed := strings.TrimSpace(line)
		prevComment = m == nil && strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(trimmed, "#!") && len(strings.TrimSpace(strings.TrimLeft(trimmed, "#"))) > 0
	}
	return out
}

func hasReason(directiveBody string) bool {
	_, reason, ok := strings.Cut(directiveBody, "#")
	return ok && strings.TrimSpace(reason) != ""
}

// checkShell runs shellcheck over every shell script and checks that every
// disable directive carries a reason.
func checkShell(ctx context.Context, opts Options) Result {
	res := Result{Check: CheckShell}
	files, err := ShellScripts(opts.Root)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckShell, File: ".", Message: err.Error()})
	}
	res.Checked = len(files)
	if len(files) == 0 {
		return res
	}
	res.Failures = append(res.Failures, runShellcheck(ctx, opts, files)...)
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(opts.Root, f))
		if err != nil {
			res.Failures = append(res.Failures, Failure{Check: CheckShell, File: f, Message: err.Error()})
			continue
		}
		res.Failures = append(res.Failures, UnreasonedDisables(f, src)...)
	}
	return res
}

func runShellcheck(ctx context.Context, opts Options, files []string) []Failure {
	r, err := opts.Run.Run(ctx, ShellcheckCmd(opts.Tools.Shellcheck, opts.Root, files))
	var xe *execx.Error
	if err != nil && !(errors.As(err, &xe) && xe.ExitCode == 1) {
		return []Failure{{Check: CheckShell, File: ".", Message: "shellcheck did not run: " + err.Error()}}
	}
	comments, perr := ParseShellcheckJSON1(r.Stdout)
	if perr != nil {
		return []Failure{{Check: CheckShell, File: ".", Message: perr.Error()}}
	}
	out := make([]Failure, 0, len(comments))
	for _, c := range comments {
		out = append(out, ShellcheckFailure(c))
	}
	return out
}

// ShellcheckFailure turns a shellcheck finding into a report failure.
func ShellcheckFailure(c ShellcheckComment) Failure {
	return Failure{Check: CheckShell, File: filepath.ToSlash(c.File), Line: c.Line,
		Subject: fmt.Sprintf("SC%d (%s)", c.Code, c.Level), Message: c.Message,
		Expected: "no shellcheck warning", Found: fmt.Sprintf("SC%d", c.Code)}
}
