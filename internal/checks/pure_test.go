package checks_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/checks"
)

func TestSplitPath(t *testing.T) {
	cases := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "sourceos.mesh.role", want: []string{"sourceos", "mesh", "role"}},
		{in: "networking.hostName", want: []string{"networking", "hostName"}},
		{in: `fileSystems."/".device`, want: []string{"fileSystems", "/", "device"}},
		{in: `environment.etc."sourceos/channel.d".text`, want: []string{"environment", "etc", "sourceos/channel.d", "text"}},
		{in: "single", want: []string{"single"}},
		{in: "", wantErr: true},
		{in: "a..b", wantErr: true},
		{in: "a.", wantErr: true},
		{in: `a."unterminated`, wantErr: true},
		{in: `a."x"b`, wantErr: true},
	}
	for _, c := range cases {
		got, err := checks.SplitPath(c.in)
		if (err != nil) != c.wantErr || (!c.wantErr && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("SplitPath(%q) = %q, %v; want %q, err=%v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestParseHostFacts(t *testing.T) {
	cases := []struct {
		name, doc, wantErr string
	}{
		{"ok", `{"hosts":{"h":{"file":"hosts/h/default.nix","facts":[{"path":"a.b","equals":1},{"path":"p","package":"x"}]}}}`, ""},
		{"unknown field", `{"hosts":{"h":{"file":"f","fact":[]}}}`, `hosts.h: unknown key "fact"`},
		{"no hosts", `{"hosts":{}}`, "no hosts"},
		{"both kinds", `{"hosts":{"h":{"file":"f","facts":[{"path":"a","equals":1,"package":"x"}]}}}`, "exactly one"},
		{"neither kind", `{"hosts":{"h":{"file":"f","facts":[{"path":"a"}]}}}`, "exactly one"},
		{"bad path", `{"hosts":{"h":{"file":"f","facts":[{"path":"a..b","equals":1}]}}}`, "empty attribute"},
		{"no file", `{"hosts":{"h":{"facts":[]}}}`, "file is empty"},
	}
	for _, c := range cases {
		_, err := checks.ParseHostFacts([]byte(c.doc))
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func TestPackageNames(t *testing.T) {
	c, err := checks.ParseHostFacts([]byte(`{"hosts":{"h":{"file":"f","facts":[{"path":"p","package":"tailscale"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := checks.PackageNames(c, []byte("{ pkgs, ... }: { x = pkgs.htop; y = [ pkgs.python3Packages pkgs.gnome-tweaks ]; z = mypkgs.nope; }"))
	want := []string{"gnome-tweaks", "htop", "python3Packages", "tailscale"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PackageNames = %q, want %q", got, want)
	}
}

func TestCompareHost(t *testing.T) {
	hc := checks.HostEntry{
		File:    "hosts/exit/default.nix",
		Imports: []string{"modules/profiles/stable.nix"},
		Facts: []checks.Fact{
			{Path: "sourceos.mesh.role", Equals: json.RawMessage(`"exit"`)},
			{Path: "sourceos.mesh.package", Package: "tailscale"},
			{Path: "sourceos.mesh.enable", Equals: json.RawMessage(`true`)},
		},
	}
	good := func() *checks.HostEval {
		return &checks.HostEval{
			Imports: []string{"modules/profiles/stable.nix", "modules/hardware/vm.nix"},
			Facts: []checks.EvalFact{
				{Defined: true, Value: json.RawMessage(`"exit"`), File: "hosts/exit/default.nix", Line: 13},
				{Defined: true, Value: json.RawMessage(`{"package":"tailscale"}`), File: "hosts/exit/default.nix", Line: 14},
				{Defined: true, Value: json.RawMessage(`true`), File: "hosts/exit/default.nix", Line: 12},
			},
		}
	}
	cases := []struct {
		name   string
		mutate func(*checks.HostEval)
		want   []string // report lines
	}{
		{"all hold", func(*checks.HostEval) {}, nil},
		{"wrong role", func(e *checks.HostEval) { e.Facts[0].Value = json.RawMessage(`"relay"`) },
			[]string{`hosts/exit/default.nix:13: exit: sourceos.mesh.role: expected "exit", found "relay"`}},
		{"role not set", func(e *checks.HostEval) { e.Facts[0] = checks.EvalFact{} },
			[]string{`hosts/exit/default.nix: exit: sourceos.mesh.role: expected "exit", found not set`}},
		{"conflict", func(e *checks.HostEval) { e.Facts[0].Conflict = true },
			[]string{`hosts/exit/default.nix:13: exit: sourceos.mesh.role: conflicting definitions at the same priority: expected "exit", found "exit" and another value`}},
		{"other package", func(e *checks.HostEval) { e.Facts[1].Value = json.RawMessage(`{"package":"nebula"}`) },
			[]string{`hosts/exit/default.nix:14: exit: sourceos.mesh.package: expected package tailscale, found package nebula`}},
		{"not a package", func(e *checks.HostEval) { e.Facts[1].Value = json.RawMessage(`"tailscale"`) },
			[]string{`hosts/exit/default.nix:14: exit: sourceos.mesh.package: expected package tailscale, found "tailscale"`}},
		{"bool as string", func(e *checks.HostEval) { e.Facts[2].Value = json.RawMessage(`"true"`) },
			[]string{`hosts/exit/default.nix:12: exit: sourceos.mesh.enable: expected true, found "true"`}},
		{"import missing", func(e *checks.HostEval) { e.Imports = []string{"modules/profiles/canary.nix"} },
			[]string{`hosts/exit/default.nix: exit: imports: required module not imported: expected modules/profiles/stable.nix, found modules/profiles/canary.nix`}},
		{"defined elsewhere", func(e *checks.HostEval) {
			e.Facts[0] = checks.EvalFact{Defined: true, Value: json.RawMessage(`"peer"`), File: "modules/profiles/stable.nix", Line: 7}
		}, []string{`modules/profiles/stable.nix:7: exit: sourceos.mesh.role: expected "exit", found "peer"`}},
		{"short evaluation", func(e *checks.HostEval) { e.Facts = e.Facts[:2] },
			[]string{`hosts/exit/default.nix: exit: sourceos.mesh.enable: evaluation returned no value`}},
	}
	for _, c := range cases {
		ev := good()
		c.mutate(ev)
		var got []string
		for _, f := range checks.CompareHost("exit", hc, ev) {
			got = append(got, f.String())
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestParseShellcheckJSON1(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []checks.ShellcheckComment
		wantErr bool
	}{
		{name: "clean", in: `{"comments":[]}`, want: []checks.ShellcheckComment{}},
		{name: "one warning", in: `{"comments":[{"file":"scripts/x.sh","line":7,"endLine":7,"column":1,"endColumn":4,"level":"warning","code":2034,"message":"BAZ appears unused. Verify use (or export if used externally).","fix":null}]}`,
			want: []checks.ShellcheckComment{{File: "scripts/x.sh", Line: 7, Column: 1, Level: "warning", Code: 2034, Message: "BAZ appears unused. Verify use (or export if used externally)."}}},
		{name: "error level with fix", in: `{"comments":[{"file":"a.sh","line":2,"column":5,"level":"error","code":1073,"message":"Couldn't parse this","fix":{"replacements":[]}}]}`,
			want: []checks.ShellcheckComment{{File: "a.sh", Line: 2, Column: 5, Level: "error", Code: 1073, Message: "Couldn't parse this"}}},
		{name: "json (not json1) array", in: `[{"file":"a.sh"}]`, wantErr: true},
		{name: "garbage", in: `In a.sh line 1:`, wantErr: true},
	}
	for _, c := range cases {
		got, err := checks.ParseShellcheckJSON1([]byte(c.in))
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v", c.name, err)
			continue
		}
		if !c.wantErr && !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	f := checks.ShellcheckFailure(checks.ShellcheckComment{File: "scripts/x.sh", Line: 7, Level: "warning", Code: 2034, Message: "BAZ appears unused."})
	if want := "scripts/x.sh:7: SC2034 (warning): BAZ appears unused.: expected no shellcheck warning, found SC2034"; f.String() != want {
		t.Errorf("failure line = %q, want %q", f.String(), want)
	}
}

func TestIsShellScript(t *testing.T) {
	cases := []struct {
		name, head string
		want       bool
	}{
		{"deploy.sh", "", true},
		{"lib.bash", "", true},
		{"run", "#!/usr/bin/env bash\nset -e\n", true},
		{"run", "#!/bin/sh\n", true},
		{"run", "#! /bin/bash -eu\n", true},
		{"run", "#!/usr/bin/env -S bash -e\n", true},
		{"run", "#!/bin/dash\n", true},
		{"run", "#!/usr/bin/env python3\n", false},
		{"run", "#!/usr/bin/env zsh\n", false},
		{"run", "#!/bin/shfoo\n", false},
		{"README", "# title\n", false},
		{"tool.py", "#!/bin/bash\n", false},
	}
	for _, c := range cases {
		if got := checks.IsShellScript(c.name, []byte(c.head)); got != c.want {
			t.Errorf("IsShellScript(%q, %q) = %v, want %v", c.name, c.head, got, c.want)
		}
	}
}

func TestUnreasonedDisables(t *testing.T) {
	cases := []struct {
		name, src string
		lines     []int
	}{
		{"trailing reason", "#!/bin/bash\necho\n# shellcheck disable=SC2034  # probe kept for diagnostics\nX=1\n", nil},
		{"reason above", "#!/bin/bash\necho\n# Kept: read by the operator in a debugger.\n# shellcheck disable=SC2034\nX=1\n", nil},
		{"no reason", "#!/bin/bash\necho\n# shellcheck disable=SC2034\nX=1\n", []int{3}},
		{"empty trailing comment", "#!/bin/bash\necho\n# shellcheck disable=SC2034 #\nX=1\n", []int{3}},
		{"shebang is no reason", "#!/bin/bash\n# shellcheck disable=SC2034\nX=1\n", []int{2}},
		{"directive above is no reason", "#!/bin/bash\n# shellcheck source=lib.sh\n# shellcheck disable=SC1091\n. lib.sh\n", []int{3}},
		{"source directive needs none", "#!/bin/bash\n# shellcheck source=lib.sh\n. lib.sh\n", nil},
		{"indented, two codes", "f() {\n  # shellcheck disable=SC2034,SC2154\n  X=$y\n}\n", []int{2}},
	}
	for _, c := range cases {
		var got []int
		for _, f := range checks.UnreasonedDisables("x.sh", []byte(c.src)) {
			got = append(got, f.Line)
		}
		if !reflect.DeepEqual(got, c.lines) {
			t.Errorf("%s: lines %v, want %v", c.name, got, c.lines)
		}
	}
}

func TestParseNixError(t *testing.T) {
	cases := []struct {
		name, stderr string
		want         checks.NixError
	}{
		{"nix 2.8 parse error", "error: syntax error, unexpected ';'\n\n       at /repo/hosts/x/default.nix:2:7:\n\n            1| { a = 1;\n            2|   b = ;\n             |       ^\n",
			checks.NixError{Message: "syntax error, unexpected ';'", File: "hosts/x/default.nix", Line: 2}},
		{"nix 2.8 eval error in a file outside the root", "error: attribute 'nope' missing\n\n       at /tmp/eval/module-eval.nix:40:5:\n\n       at /repo/hosts/x/default.nix:9:20:\n",
			checks.NixError{Message: "attribute 'nope' missing", File: "hosts/x/default.nix", Line: 9}},
		{"newer nix: trace then error", "error:\n       … while calling the 'import' builtin\n         at /repo/flake.nix:3:1:\n\n       error: undefined variable 'foo'\n       at /repo/hosts/y.nix:4:3:\n",
			checks.NixError{Message: "undefined variable 'foo'", File: "hosts/y.nix", Line: 4}},
		{"newer nix: error position outside the root, trace inside", "error:\n       … while evaluating\n         at /repo/flake.nix:3:1:\n\n       error: attribute 'x' missing\n       at /nix/store/abc-source/lib.nix:4:3:\n",
			checks.NixError{Message: "attribute 'x' missing", File: "flake.nix", Line: 3}},
		{"old style suffix position", "error: undefined variable 'x' at /repo/a.nix:1:7\n",
			checks.NixError{Message: "undefined variable 'x'", File: "a.nix", Line: 1}},
		{"no position", "error: getting status of '/nope': No such file or directory\n",
			checks.NixError{Message: "getting status of '/nope': No such file or directory"}},
		{"not nix at all", "exec: \"nix\": executable file not found\n",
			checks.NixError{Message: "exec: \"nix\": executable file not found"}},
	}
	for _, c := range cases {
		if got := checks.ParseNixError(c.stderr, "/repo"); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestPointerLine(t *testing.T) {
	doc := []byte("{\n  \"channel\": \"stable\",\n  \"capabilities\": [\n    \"uefi\",\n    \"Bad Cap\"\n  ],\n  \"nested\": {\"a/b\": {\"c\": [1, {\"d\": 2}]}}\n}\n")
	cases := []struct {
		ptr  string
		want int
	}{
		{"", 1},
		{"/channel", 2},
		{"/capabilities", 3},
		{"/capabilities/0", 4},
		{"/capabilities/1", 5},
		{"/nested/a~1b/c/1/d", 7},
		{"/missing", 0},
		{"/capabilities/9", 0},
	}
	for _, c := range cases {
		if got := checks.PointerLine(doc, c.ptr); got != c.want {
			t.Errorf("PointerLine(%q) = %d, want %d", c.ptr, got, c.want)
		}
	}
}

func TestReportOutput(t *testing.T) {
	rep := &checks.Report{}
	// Built through Run's exported shape: two checks, one failing.
	rep.Results = []checks.Result{
		{Check: "hosts", Checked: 4, Note: "module mode", Failures: []checks.Failure{
			{Check: "hosts", File: "hosts/exit-x86_64/default.nix", Line: 13, Subject: "exit-x86_64: sourceos.mesh.role", Expected: `"exit"`, Found: `"relay"`}}},
		{Check: "shell", Checked: 2, Failures: []checks.Failure{}},
	}
	rep.Failed = 1
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := "== hosts: 4 checked, 1 failed (module mode)\n" +
		"hosts/exit-x86_64/default.nix:13: exit-x86_64: sourceos.mesh.role: expected \"exit\", found \"relay\"\n" +
		"== shell: 2 checked, 0 failed\n" +
		"contracts: 1 failures in 1 of 2 checks (hosts 1)\n"
	if text.String() != want {
		t.Errorf("text report:\n%s\nwant:\n%s", text.String(), want)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back checks.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Failed != 1 || back.Results[0].Failures[0].Line != 13 {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}
