package buildrecord_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/buildrecord"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

const (
	sys = "/nix/store/5aj0myrsrj4zy0gd62w04dppamcaz51j-nixos-system-web-01-25.05"
	lib = "/nix/store/ghjini91jz7m7lnksrqmzlyakslarksn-sourceos-server-lib-1.0"
)

func record() *buildrecord.Record {
	return &buildrecord.Record{
		Artifact: "sourceos-custom-server-x86_64-user-7-build-42.iso",
		Files:    []buildrecord.File{{Name: "sourceos-custom-server-x86_64-user-7-build-42.iso", Size: 2102, SHA256: strings.Repeat("ab", 32)}},
		Edition:  "server", Arch: "x86_64", Target: "iso", Hostname: "web-01",
		Spec: []byte(`{"edition":"server"}`), SpecSHA256: strings.Repeat("cd", 32), FlakeRef: "path:/tmp/x", FlakeAttr: "packages.x86_64-linux.sourceos-server-iso",
		StorePaths: map[string]string{"system": sys},
		Closure: []nixstore.PathInfo{
			{Path: sys, NarHash: "sha256:125jx08jbyriisba7c16d863lhpa7pj0dc890agnhda7r42r8f3x", NarSize: 616, References: []string{lib}},
			{Path: lib, NarHash: "sha256:0km3jwlzsxl145c8kzyf9dsfcn4k7yhw0a7m5d2as8zrv4rmiq05", NarSize: 1664},
		},
		StartedOn: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), FinishedOn: time.Date(2026, 11, 30, 9, 40, 0, 0, time.UTC),
	}
}

func TestRoundTrip(t *testing.T) {
	b, err := record().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := buildrecord.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("read back: %v\n%s", err, b)
	}
	if got.Artifact != "sourceos-custom-server-x86_64-user-7-build-42.iso" || got.Files[0].Size != 2102 || len(got.Closure) != 2 || got.Closure[0].References[0] != lib || got.Schema != buildrecord.Schema {
		t.Errorf("read back %+v", got)
	}
}

// A record comes from a machine that ran user code: anything odd in it is
// refused, with the field named.
func TestHostileRecords(t *testing.T) {
	good, _ := record().Marshal()
	for name, c := range map[string]struct {
		doc  string
		want string
	}{
		"artifact path":    {strings.Replace(string(good), `"artifact": "sourceos-custom-server-x86_64-user-7-build-42.iso"`, `"artifact": "../../etc/passwd"`, 1), "artifact"},
		"file path":        {strings.Replace(string(good), `"name": "sourceos-custom-server-x86_64-user-7-build-42.iso"`, `"name": "../x.iso"`, 1), "files[0]"},
		"no files":         {strings.Replace(string(good), `"files": [`, `"files": [], "x": [`, 1), "unknown member"},
		"spec digest":      {strings.Replace(string(good), strings.Repeat("cd", 32), "cdcd", 1), "specSha256"},
		"short digest":     {strings.Replace(string(good), strings.Repeat("ab", 32), "abcd", 1), "sha256"},
		"store path":       {strings.Replace(string(good), sys, "/etc/nix-system", -1), "/etc/nix-system"},
		"nar hash":         {strings.Replace(string(good), "sha256:125jx08jbyriisba7c16d863lhpa7pj0dc890agnhda7r42r8f3x", "md5:x", 1), "narHash"},
		"schema":           {strings.Replace(string(good), buildrecord.Schema, "https://evil.example/v9", 1), "schema"},
		"duplicate key":    {strings.Replace(string(good), `"size": 2102,`, `"size": 2102, "size": 1,`, 1), "given twice"},
		"too many files":   {strings.Replace(string(good), `"files": [`, `"files": [`+strings.Repeat(`{"name":"a","size":1,"sha256":"`+strings.Repeat("ab", 32)+`"},`, buildrecord.MaxFiles), 1), "files"},
		"case variant":     {strings.Replace(string(good), `"sha256":`, `"SHA256":`, 1), "unknown member"},
		"unknown field":    {strings.Replace(string(good), `"size": 2102,`, `"size": 2102, "signed": true,`, 1), "unknown member"},
		"edition injected": {strings.Replace(string(good), `"edition": "server"`, `"edition": "server\nSig: x"`, 1), "edition"},
		"oversized":        {`{"schema":"` + strings.Repeat("x", buildrecord.MaxBytes) + `"}`, "larger than"},
	} {
		_, err := buildrecord.Read(strings.NewReader(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error about %q", name, err, c.want)
		}
	}
}
