package testrig

// GitHub Actions expressions, evaluated offline: what a workflow's
// expressions give for a given event, so that a test can check what a job
// receives (its runner, its env) without GitHub. The syntax tree is
// actionlint's parser's; the evaluation follows GitHub's documented rules
// (docs.github.com, "Evaluate expressions in workflows and actions"): &&
// and || give one of their operands, == ignores the case of strings and
// compares values of different types as numbers, and the falsy values are
// null, false, 0, NaN and ''. What a workflow of this repository does not
// use (comparisons other than == and !=, object filters, status functions,
// hashFiles) is an error, as is turning an object or array into a string:
// a test then fails instead of guessing.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rhysd/actionlint"
)

// ExprContext holds the contexts an expression reads (github, inputs,
// vars, …), as JSON-like values: nil, bool, float64, string,
// map[string]any, []any.
type ExprContext map[string]any

// EvalExpr evaluates one expression (the text between ${{ and }}).
func EvalExpr(expr string, ctx ExprContext) (any, error) {
	v, _, err := evalAt(expr+"}}", ctx)
	return v, err
}

// Interpolate evaluates a workflow value: text with ${{ … }} parts, each
// turned into a string, as GitHub does for env values and runs-on labels.
func Interpolate(value string, ctx ExprContext) (string, error) {
	var b strings.Builder
	rest := value
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		v, n, err := evalAt(rest[i+3:], ctx)
		if err != nil {
			return "", fmt.Errorf("%q: %w", value, err)
		}
		s, err := ExprString(v)
		if err != nil {
			return "", fmt.Errorf("%q: %w", value, err)
		}
		b.WriteString(s)
		rest = rest[i+3+n:]
	}
}

// evalAt parses the expression at the start of src (which goes on past
// its closing }}) and returns its value and the length of src it used.
func evalAt(src string, ctx ExprContext) (any, int, error) {
	lex := actionlint.NewExprLexer(src)
	node, perr := actionlint.NewExprParser().Parse(lex)
	if perr != nil {
		return nil, 0, fmt.Errorf("parse: %s", perr.Message)
	}
	v, err := eval(node, ctx)
	return v, lex.Offset(), err
}

func eval(n actionlint.ExprNode, ctx ExprContext) (any, error) {
	switch n := n.(type) {
	case *actionlint.NullNode:
		return nil, nil
	case *actionlint.BoolNode:
		return n.Value, nil
	case *actionlint.IntNode:
		return float64(n.Value), nil
	case *actionlint.FloatNode:
		return n.Value, nil
	case *actionlint.StringNode:
		return n.Value, nil
	case *actionlint.VariableNode:
		v, ok := lookupFold(map[string]any(ctx), n.Name)
		if !ok {
			return nil, fmt.Errorf("context %q is not given", n.Name)
		}
		return v, nil
	case *actionlint.ObjectDerefNode:
		recv, err := eval(n.Receiver, ctx)
		if err != nil {
			return nil, err
		}
		m, _ := recv.(map[string]any)
		v, _ := lookupFold(m, n.Property)
		return v, nil
	case *actionlint.IndexAccessNode:
		return evalIndex(n, ctx)
	case *actionlint.NotOpNode:
		v, err := eval(n.Operand, ctx)
		return !Truthy(v), err
	case *actionlint.LogicalOpNode:
		return evalLogical(n, ctx)
	case *actionlint.CompareOpNode:
		return evalCompare(n, ctx)
	case *actionlint.FuncCallNode:
		return evalCall(n, ctx)
	}
	return nil, fmt.Errorf("%T is not supported here", n)
}

// lookupFold finds key in m ignoring case, as contexts and properties are.
func lookupFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func evalIndex(n *actionlint.IndexAccessNode, ctx ExprContext) (any, error) {
	recv, err := eval(n.Operand, ctx)
	if err != nil {
		return nil, err
	}
	idx, err := eval(n.Index, ctx)
	if err != nil {
		return nil, err
	}
	switch r := recv.(type) {
	case map[string]any:
		if s, ok := idx.(string); ok {
			v, _ := lookupFold(r, s)
			return v, nil
		}
	case []any:
		if f, ok := idx.(float64); ok && f >= 0 && int(f) < len(r) && f == math.Trunc(f) {
			return r[int(f)], nil
		}
	}
	return nil, nil
}

func evalLogical(n *actionlint.LogicalOpNode, ctx ExprContext) (any, error) {
	left, err := eval(n.Left, ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case n.Kind == actionlint.LogicalOpNodeKindAnd && !Truthy(left),
		n.Kind == actionlint.LogicalOpNodeKindOr && Truthy(left):
		return left, nil
	}
	return eval(n.Right, ctx)
}

func evalCompare(n *actionlint.CompareOpNode, ctx ExprContext) (any, error) {
	if !n.Kind.IsEqualityOp() {
		return nil, fmt.Errorf("comparison %s is not supported here", n.Kind)
	}
	left, err := eval(n.Left, ctx)
	if err != nil {
		return nil, err
	}
	right, err := eval(n.Right, ctx)
	if err != nil {
		return nil, err
	}
	eq := exprEqual(left, right)
	if n.Kind == actionlint.CompareOpNodeKindNotEq {
		return !eq, nil
	}
	return eq, nil
}

// exprEqual is GitHub's ==: strings without regard to case, values of
// different types as numbers, objects and arrays never equal here (GitHub
// compares them by identity).
func exprEqual(a, b any) bool {
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			return strings.EqualFold(as, bs)
		}
	}
	switch a.(type) {
	case map[string]any, []any:
		return false
	}
	switch b.(type) {
	case map[string]any, []any:
		return false
	}
	if a == nil && b == nil {
		return true
	}
	x, y := toNumber(a), toNumber(b)
	return x == y // NaN is never equal
}

// toNumber is GitHub's conversion to a number.
func toNumber(v any) float64 {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 1
		}
		return 0
	case float64:
		return v
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return math.NaN()
}

// Truthy is GitHub's conversion to a boolean.
func Truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case string:
		return v != ""
	}
	return true
}

// ExprString is GitHub's conversion to a string; an object or array is an
// error (see the package note).
func ExprString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("an %T is turned into a string", v)
}

func evalCall(n *actionlint.FuncCallNode, ctx ExprContext) (any, error) {
	args := make([]any, len(n.Args))
	for i, a := range n.Args {
		v, err := eval(a, ctx)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	name := strings.ToLower(n.Callee)
	want := map[string]int{"fromjson": 1, "tojson": 1, "startswith": 2, "endswith": 2, "contains": 2}
	if k, ok := want[name]; ok && len(args) != k {
		return nil, fmt.Errorf("%s takes %d arguments", n.Callee, k)
	}
	switch name {
	case "fromjson":
		return fromJSON(args[0])
	case "tojson":
		b, err := json.MarshalIndent(args[0], "", "  ")
		return string(b), err
	case "startswith", "endswith":
		return stringTest(name, args[0], args[1])
	case "contains":
		return contains(args[0], args[1])
	case "format":
		return format(args)
	}
	return nil, fmt.Errorf("function %s is not supported here", n.Callee)
}

func fromJSON(v any) (any, error) {
	s, err := ExprString(v)
	if err != nil {
		return nil, fmt.Errorf("fromJSON: %w", err)
	}
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("fromJSON(%q): %w", s, err)
	}
	return out, nil
}

func stringTest(name string, a, b any) (bool, error) {
	s, err := ExprString(a)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	p, err := ExprString(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	s, p = strings.ToLower(s), strings.ToLower(p)
	if name == "startswith" {
		return strings.HasPrefix(s, p), nil
	}
	return strings.HasSuffix(s, p), nil
}

func contains(search, item any) (bool, error) {
	if list, ok := search.([]any); ok {
		for _, x := range list {
			if exprEqual(x, item) {
				return true, nil
			}
		}
		return false, nil
	}
	s, err := ExprString(search)
	if err != nil {
		return false, fmt.Errorf("contains: %w", err)
	}
	i, err := ExprString(item)
	if err != nil {
		return false, fmt.Errorf("contains: %w", err)
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(i)), nil
}

// format replaces {N} with the Nth argument after the first; {{ and }}
// are literal braces.
func format(args []any) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("format takes at least one argument")
	}
	f, err := ExprString(args[0])
	if err != nil {
		return "", fmt.Errorf("format: %w", err)
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		switch {
		case strings.HasPrefix(f[i:], "{{"), strings.HasPrefix(f[i:], "}}"):
			b.WriteByte(f[i])
			i++
		case f[i] == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("format %q: unclosed {", f)
			}
			k, err := strconv.Atoi(f[i+1 : i+end])
			if err != nil || k < 0 || k+1 >= len(args) {
				return "", fmt.Errorf("format %q: bad placeholder %s", f, f[i:i+end+1])
			}
			s, err := ExprString(args[k+1])
			if err != nil {
				return "", fmt.Errorf("format: %w", err)
			}
			b.WriteString(s)
			i += end
		default:
			b.WriteByte(f[i])
		}
	}
	return b.String(), nil
}
