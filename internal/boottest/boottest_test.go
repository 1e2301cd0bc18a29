package boottest_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/boottest"
	"github.com/socioprophet/sourceos/internal/execx"
)

func TestAttrAndBuildArgs(t *testing.T) {
	cases := []struct {
		req        boottest.Request
		attr, argv string
	}{
		{boottest.Request{Flake: "path:/src", Arch: "x86_64", Edition: "desktop", Kind: boottest.Boot},
			"checks.x86_64-linux.edition-desktop-boot",
			"build --no-link --print-build-logs --no-update-lock-file path:/src#checks.x86_64-linux.edition-desktop-boot"},
		{boottest.Request{Flake: "github:socioprophet/sourceos", Arch: "aarch64", Edition: "edge", Kind: boottest.Boot},
			"checks.aarch64-linux.edition-edge-boot",
			"build --no-link --print-build-logs --no-update-lock-file github:socioprophet/sourceos#checks.aarch64-linux.edition-edge-boot"},
		{boottest.Request{Flake: "/src", Arch: "x86_64", Edition: "server", Kind: boottest.Install},
			"legacyPackages.x86_64-linux.tests.edition-server-install",
			"build --no-link --print-build-logs --no-update-lock-file /src#legacyPackages.x86_64-linux.tests.edition-server-install"},
		{boottest.Request{Flake: "path:/src", Arch: "x86_64", Edition: "desktop", Kind: boottest.DiskBoot},
			"legacyPackages.x86_64-linux.tests.image-desktop-qcow2-boot",
			"build --no-link --print-build-logs --no-update-lock-file path:/src#legacyPackages.x86_64-linux.tests.image-desktop-qcow2-boot"},
		{boottest.Request{Flake: "path:/src", Arch: "aarch64", Edition: "edge", Kind: boottest.DiskBoot},
			"legacyPackages.aarch64-linux.tests.image-edge-qcow2-boot",
			"build --no-link --print-build-logs --no-update-lock-file path:/src#legacyPackages.aarch64-linux.tests.image-edge-qcow2-boot"},
	}
	for _, c := range cases {
		if err := c.req.Validate(); err != nil {
			t.Errorf("%+v: %v", c.req, err)
		}
		if got := c.req.Attr(); got != c.attr {
			t.Errorf("attr %q, want %q", got, c.attr)
		}
		if got := strings.Join(boottest.BuildArgs(c.req), " "); got != c.argv {
			t.Errorf("argv %q, want %q", got, c.argv)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := boottest.Request{Flake: "path:/src", Arch: "x86_64", Edition: "server", Kind: boottest.Boot}
	bad := map[string]func(*boottest.Request){
		"no flake":             func(r *boottest.Request) { r.Flake = "" },
		"arch":                 func(r *boottest.Request) { r.Arch = "riscv64" },
		"not an edition name":  func(r *boottest.Request) { r.Edition = "server; rm -rf /" },
		"attribute injection":  func(r *boottest.Request) { r.Edition = "x.y" },
		"empty edition":        func(r *boottest.Request) { r.Edition = "" },
		"not a kind":           func(r *boottest.Request) { r.Kind = "reboot" },
		"empty kind":           func(r *boottest.Request) { r.Kind = "" },
		"kind of another case": func(r *boottest.Request) { r.Kind = "Disk" },
		"upper-case edition":   func(r *boottest.Request) { r.Edition = "Server" },
		"edition with a slash": func(r *boottest.Request) { r.Edition = "../server" },
	}
	for name, mutate := range bad {
		r := ok
		mutate(&r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, r)
		}
		if err := boottest.Run(context.Background(), boottest.Options{Run: &execx.Fake{}}, r); err == nil {
			t.Errorf("%s: Run accepted %+v", name, r)
		}
	}
}

func TestRunStreamsThePrefixedLog(t *testing.T) {
	fake := &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) {
		return execx.Result{Stderr: []byte("vm-test-run> machine: waiting for unit sshd.service\nvm-test-run> (finished: waiting for unit sshd.service, in 2.01 seconds)\n")}, nil
	}}
	var out bytes.Buffer
	r := boottest.Request{Flake: "path:/src", Arch: "x86_64", Edition: "server", Kind: boottest.Boot}
	if err := boottest.Run(context.Background(), boottest.Options{Run: fake, Stream: &out}, r); err != nil {
		t.Fatal(err)
	}
	if got := fake.Commands(); len(got) != 1 || got[0] != (execx.Cmd{Name: "nix", Args: boottest.BuildArgs(r)}).String() {
		t.Fatalf("commands %q", got)
	}
	for _, want := range []string{
		"==> NixOS test path:/src#checks.x86_64-linux.edition-server-boot\n",
		"    │ vm-test-run> machine: waiting for unit sshd.service\n",
		"==> edition-server-boot passed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stream lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFailureReportsTheTailOnce(t *testing.T) {
	var log strings.Builder
	for i := 0; i < 100; i++ {
		log.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	log.WriteString("Test \"edition-server-boot\" failed with error: \"boom\"")
	fake := &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) {
		return execx.Result{Stderr: []byte(log.String())}, errors.New("exit status 1")
	}}
	r := boottest.Request{Flake: "path:/src", Arch: "x86_64", Edition: "server", Kind: boottest.Boot}
	err := boottest.Run(context.Background(), boottest.Options{Run: fake, TailLines: 5}, r)
	var f *boottest.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err %v (%T), want a *Failure", err, err)
	}
	if len(f.Tail) != 5 || f.Tail[4] != "Test \"edition-server-boot\" failed with error: \"boom\"" {
		t.Fatalf("tail %q", f.Tail)
	}
	msg := err.Error()
	if !strings.Contains(msg, "checks.x86_64-linux.edition-server-boot failed") || strings.Count(msg, "boom") != 1 {
		t.Fatalf("message must name the test and carry the error line once:\n%s", msg)
	}
	var xe *execx.Error
	if !errors.As(err, &xe) {
		t.Fatal("the command error must stay reachable")
	}
	if !slices.Contains(strings.Split(msg, "\n"), "    line v") {
		t.Fatalf("message lacks the tail lines:\n%s", msg)
	}
}
