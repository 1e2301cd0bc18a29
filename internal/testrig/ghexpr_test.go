package testrig_test

import (
	"testing"

	"github.com/socioprophet/sourceos/internal/testrig"
)

// The rules of GitHub's expressions the workflows rely on.
func TestEvalExprFollowsGitHubRules(t *testing.T) {
	ctx := testrig.ExprContext{
		"github": map[string]any{"event_name": "workflow_dispatch", "event": map[string]any{"client_payload": nil}},
		"inputs": map[string]any{"spec": `{"arch":"aarch64"}`, "empty": ""},
		"vars":   map[string]any{},
	}
	cases := map[string]any{
		`'a' && 'b'`:                            "b",
		`'' && 'b'`:                             "",
		`'' || 'b'`:                             "b",
		`inputs.missing || 'x'`:                 "x",
		`inputs.empty || 0 || 'last'`:           "last",
		`'ABC' == 'abc'`:                        true,
		`'1' == 1`:                              true,
		`null == 0`:                             true,
		`'a' != 'A'`:                            false,
		`fromJSON(inputs.spec).arch`:            "aarch64",
		`fromJSON(inputs.spec).ARCH`:            "aarch64",
		`fromJSON(inputs.spec)['arch']`:         "aarch64",
		`fromJSON('[1,2]')[1]`:                  float64(2),
		`toJSON('x"y')`:                         `"x\"y"`,
		`toJSON(fromJSON('{"a":1}'))`:           "{\n  \"a\": 1\n}",
		`startsWith('Hello', 'he')`:             true,
		`format('gs://{0}/{1}/{{x}}', 'b', 7)`:  "gs://b/7/{x}",
		`github.event.client_payload.spec.arch`: nil,
		`!inputs.empty`:                         true,
		`contains(fromJSON('["iso","netboot"]'), 'NETBOOT')`: true,
	}
	for expr, want := range cases {
		got, err := testrig.EvalExpr(expr, ctx)
		if err != nil || got != want {
			t.Errorf("%s = %#v, %v; want %#v", expr, got, err, want)
		}
	}
	for _, bad := range []string{`format('{0}', inputs)`, `startsWith(inputs, '{')`, `unknown.x`, `fromJSON('nope')`, `1 < 2`, `hashFiles('x')`} {
		if got, err := testrig.EvalExpr(bad, ctx); err == nil {
			t.Errorf("%s = %#v, want an error", bad, got)
		}
	}
	s, err := testrig.Interpolate("${{ github.event_name }}/${{ inputs.empty || 'x' }}-${{ '}}' }}!", ctx)
	if err != nil || s != "workflow_dispatch/x-}}!" {
		t.Errorf("Interpolate = %q, %v", s, err)
	}
}
