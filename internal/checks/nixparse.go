package checks

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"

	"github.com/socioprophet/sourceos/internal/execx"
)

// NixParseCmd parses one file without evaluating it.
func NixParseCmd(nixInstantiate, root, file string) execx.Cmd {
	return execx.Cmd{Name: nixInstantiate, Dir: root, Args: []string{"--parse", file}, Stdout: io.Discard}
}

// NixFiles lists the repository's .nix files.
func NixFiles(root string) ([]string, error) {
	return repoFiles(root, func(rel string, _ fs.DirEntry) bool { return strings.HasSuffix(rel, ".nix") })
}

// checkNixParse parses every .nix file with the real Nix parser.
func checkNixParse(ctx context.Context, opts Options) Result {
	res := Result{Check: CheckNix}
	files, err := NixFiles(opts.Root)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckNix, File: ".", Message: err.Error()})
	}
	res.Checked = len(files)
	for _, f := range files {
		if fail := parseOne(ctx, opts, f); fail != nil {
			res.Failures = append(res.Failures, *fail)
		}
	}
	return res
}

func parseOne(ctx context.Context, opts Options, file string) *Failure {
	_, err := opts.Run.Run(ctx, NixParseCmd(opts.Tools.NixInstantiate, opts.Root, file))
	if err == nil {
		return nil
	}
	fail := &Failure{Check: CheckNix, File: file, Message: err.Error(), Expected: "a Nix expression that parses"}
	var xe *execx.Error
	if errors.As(err, &xe) && xe.ExitCode > 0 {
		ne := ParseNixError(xe.Stderr, opts.Root)
		fail.Message, fail.Found = "", ne.Message
		if ne.File == file {
			fail.Line = ne.Line
		}
	}
	return fail
}
