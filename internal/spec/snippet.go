package spec

import (
	"fmt"
	"sort"
	"strings"
)

// forbiddenIdents are names a module snippet may not use anywhere outside
// string literals. `builtins` is refused whole, so no primop can be reached
// through it however its attribute name is spelt; primops that are also in
// scope unqualified are listed by name, and every `__`-prefixed name is
// refused (they alias builtins: __getEnv, __findFile, …).
var forbiddenIdents = map[string]string{
	"builtins":                   "builtins is not available to module snippets",
	"import":                     "import reaches outside the snippet",
	"scopedImport":               "scopedImport reaches outside the snippet",
	"fetchTarball":               "fetchers reach the network",
	"fetchurl":                   "fetchers reach the network",
	"fetchGit":                   "fetchers reach the network",
	"fetchTree":                  "fetchers reach the network",
	"fetchMercurial":             "fetchers reach the network",
	"fetchClosure":               "fetchers reach the network",
	"getEnv":                     "the build environment is not readable",
	"readFile":                   "files outside the snippet are not readable",
	"readDir":                    "files outside the snippet are not readable",
	"pathExists":                 "files outside the snippet are not readable",
	"exec":                       "builtins.exec runs programs at evaluation time",
	"getFlake":                   "flakes reach outside the snippet",
	"storePath":                  "store paths are not allowed",
	"placeholder":                "placeholder is not needed by modules",
	"unsafeDiscardStringContext": "string context is not to be tampered with",
	"fileContents":               "files outside the snippet are not readable",
	"importJSON":                 "files outside the snippet are not readable",
	"importTOML":                 "files outside the snippet are not readable",
}

// operatorPrimops are what the parser prints for arithmetic and comparison
// operators (10 / 2 becomes __div 10 2); they are harmless.
var operatorPrimops = map[string]bool{"__div": true, "__sub": true, "__mul": true, "__lessThan": true}

// SnippetViolation is one construct a snippet may not use.
type SnippetViolation struct {
	Token  string
	Reason string
}

// CheckSnippetAST inspects the output of `nix-instantiate --parse` for a
// module snippet and returns everything that reaches outside the sandbox:
// forbidden names, path literals (the parser prints relative, home and
// absolute paths, and `<…>` look-ups, in resolved form) and store paths in
// strings. It is pure; the caller runs the parser.
func CheckSnippetAST(parsed string) []SnippetViolation {
	l := &lexer{src: parsed}
	l.code(false)
	sort.SliceStable(l.found, func(i, j int) bool { return l.found[i].Token < l.found[j].Token })
	return dedupe(l.found)
}

type lexer struct {
	src   string
	pos   int
	found []SnippetViolation
}

func (l *lexer) add(tok, reason string) {
	l.found = append(l.found, SnippetViolation{Token: tok, Reason: reason})
}

// code lexes Nix code until the end of input or, in an antiquotation, the
// closing brace.
func (l *lexer) code(inAntiquote bool) {
	depth := 0
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '"':
			l.pos++
			l.str()
		case c == '{':
			depth++
			l.pos++
		case c == '}':
			l.pos++
			if inAntiquote && depth == 0 {
				return
			}
			depth--
		case c == '/':
			l.path()
		case c == '<' && l.pos+1 < len(l.src) && isPathChar(l.src[l.pos+1]):
			l.add(l.word(), "search-path look-ups (<…>) reach outside the snippet")
		case isIdentStart(c):
			l.ident()
		default:
			l.pos++
		}
	}
}

func (l *lexer) str() {
	var text strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\\' && l.pos+1 < len(l.src):
			text.WriteByte(l.src[l.pos+1])
			l.pos += 2
		case c == '"':
			l.pos++
			l.checkString(text.String())
			return
		case c == '$' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '{':
			l.pos += 2
			l.code(true)
		default:
			text.WriteByte(c)
			l.pos++
		}
	}
	l.checkString(text.String())
}

func (l *lexer) checkString(s string) {
	if strings.Contains(s, "/nix/store/") || strings.Contains(s, "/nix/var/") {
		l.add(s, "store paths are not allowed")
	}
}

// path records a path literal: the parser has already resolved ./x, ../x
// and ~/x to absolute paths, so every unquoted `/` outside an identifier
// starts a path (division prints as __div).
func (l *lexer) path() {
	start := l.pos
	for l.pos < len(l.src) && isPathChar(l.src[l.pos]) {
		l.pos++
	}
	if l.pos == start {
		l.pos++
	}
	l.add(l.src[start:l.pos], "path literals reach outside the snippet (relative, home and absolute paths alike)")
}

func (l *lexer) word() string {
	start := l.pos
	for l.pos < len(l.src) && l.src[l.pos] != '>' && l.src[l.pos] != ' ' {
		l.pos++
	}
	if l.pos < len(l.src) && l.src[l.pos] == '>' {
		l.pos++
	}
	return l.src[start:l.pos]
}

func (l *lexer) ident() {
	start := l.pos
	for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
		l.pos++
	}
	id := l.src[start:l.pos]
	if reason, bad := forbiddenIdents[id]; bad {
		l.add(id, reason)
	} else if strings.HasPrefix(id, "__") && !operatorPrimops[id] {
		l.add(id, "__-prefixed names alias builtins")
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '\'' || c == '-'
}

func isPathChar(c byte) bool {
	return isIdentChar(c) || c == '/' || c == '.' || c == '+' || c == '~'
}

func dedupe(in []SnippetViolation) []SnippetViolation {
	var out []SnippetViolation
	seen := map[string]bool{}
	for _, v := range in {
		if !seen[v.Token] {
			seen[v.Token] = true
			out = append(out, v)
		}
	}
	return out
}

// SnippetError is returned for a snippet that reaches outside the sandbox.
type SnippetError struct{ Violations []SnippetViolation }

func (e *SnippetError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = fmt.Sprintf("%s: %s", quoteValue(v.Token), v.Reason)
	}
	return "moduleSnippet refused:\n  " + strings.Join(msgs, "\n  ")
}
