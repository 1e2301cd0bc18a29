package nixstore_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const sys = "/nix/store/bkid2fqll2zr8y7mawi159ngwh5q83ac-nixos-system-sourceos-desktop-25.05"

func TestParsePathInfoShapes(t *testing.T) {
	var want []nixstore.PathInfo
	for _, name := range []string{"nix-2.8-array.json", "nix-2.19-object.json", "nix-hash-object.json"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := nixstore.ParsePathInfo(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 5 {
				t.Fatalf("got %d paths, want 5", len(got))
			}
			for i := range got {
				got[i].Signatures = nil // the 2.8 fixture has none either
			}
			sysInfo := got[1]
			if sysInfo.Path != sys || sysInfo.NarHash != "sha256:0svp6yqk91kgf5g7xr90xy3yjsk0jp0aigndkk5nmbj62g6w347y" ||
				sysInfo.NarSize != 792 || len(sysInfo.References) != 2 ||
				sysInfo.Deriver != "/nix/store/pq3an5h40qlgha11ybprgi5cylp1901v-nixos-system-sourceos-desktop-25.05.drv" {
				t.Fatalf("system path info = %+v", sysInfo)
			}
			if want == nil {
				want = got
			} else if !reflect.DeepEqual(got, want) {
				t.Fatalf("shape %s parses differently:\n%+v\nwant\n%+v", name, got, want)
			}
		})
	}
}

func TestParsePathInfoRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"not json":    "hello",
		"null entry":  `{"/nix/store/bkid2fqll2zr8y7mawi159ngwh5q83ac-x": null}`,
		"invalid":     `[{"path":"/nix/store/bkid2fqll2zr8y7mawi159ngwh5q83ac-x","valid":false}]`,
		"bad path":    `[{"path":"/tmp/x","narHash":"sha256:0svp6yqk91kgf5g7xr90xy3yjsk0jp0aigndkk5nmbj62g6w347y","narSize":1}]`,
		"bad hash":    `[{"path":"` + sys + `","narHash":"md5:abc","narSize":1}]`,
		"no size":     `[{"path":"` + sys + `","narHash":"sha256:0svp6yqk91kgf5g7xr90xy3yjsk0jp0aigndkk5nmbj62g6w347y"}]`,
		"bad ref":     `[{"path":"` + sys + `","narHash":"sha256:0svp6yqk91kgf5g7xr90xy3yjsk0jp0aigndkk5nmbj62g6w347y","narSize":1,"references":["../x"]}]`,
		"number root": `42`,
	} {
		if _, err := nixstore.ParsePathInfo([]byte(in)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestNormaliseHash(t *testing.T) {
	want := "sha256:0svp6yqk91kgf5g7xr90xy3yjsk0jp0aigndkk5nmbj62g6w347y"
	for _, in := range []string{want, "sha256-/pDBzRNGrmrLnM2+qMCVYGrph+8g5X5ecW+GNLE3d2s=",
		"sha256:fe90c1cd1346ae6acb9ccdbea8c095606ae987ef20e57e5e716f8634b137776b"} {
		got, err := nixstore.NormaliseHash(in)
		if err != nil || got != want {
			t.Errorf("NormaliseHash(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestTopoSort(t *testing.T) {
	mk := func(name string, refs ...string) nixstore.PathInfo {
		return nixstore.PathInfo{Path: "/nix/store/" + name, References: refs}
	}
	a, b, c := "/nix/store/a", "/nix/store/b", "/nix/store/c"
	in := []nixstore.PathInfo{mk("c", a, b, c), mk("a"), mk("b", a, "/nix/store/outside")}
	got, err := nixstore.TopoSort(in)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, pi := range got {
		order = append(order, pi.Path)
	}
	if strings.Join(order, " ") != a+" "+b+" "+c {
		t.Fatalf("order = %v", order)
	}
	if _, err := nixstore.TopoSort([]nixstore.PathInfo{mk("a", b), mk("b", a)}); err == nil {
		t.Fatal("cycle not detected")
	}
}

func TestQueryArgvWithFakeRunner(t *testing.T) {
	b, err := os.ReadFile("testdata/nix-2.8-array.json")
	if err != nil {
		t.Fatal(err)
	}
	f := &execx.Fake{Respond: func(execx.Cmd) (execx.Result, error) { return execx.Result{Stdout: b}, nil }}
	got, err := nixstore.Query(context.Background(), f, sys)
	if err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1].Path != sys {
		t.Fatalf("the root must come last in topological order, got %s", got[len(got)-1].Path)
	}
	want := "nix --extra-experimental-features 'nix-command flakes' path-info --json --recursive " + sys
	if cmds := f.Commands(); len(cmds) != 1 || cmds[0] != want {
		t.Fatalf("commands = %q, want %q", cmds, want)
	}
}

func TestQueryRealNix(t *testing.T) {
	paths := testrig.Build(t, testrig.Attr(t, "sourceos-desktop-system"))
	infos, err := nixstore.Query(context.Background(), &execx.Exec{}, paths[0])
	if err != nil {
		t.Fatal(err)
	}
	closure := testrig.Closure(t, paths[0])
	if len(infos) != len(closure) {
		t.Fatalf("Query gave %d paths, nix path-info -r %d", len(infos), len(closure))
	}
	seen := map[string]bool{}
	for _, pi := range infos {
		for _, r := range pi.References {
			if r != pi.Path && !seen[r] {
				t.Fatalf("%s comes before its reference %s", pi.Path, r)
			}
		}
		seen[pi.Path] = true
		if !strings.HasPrefix(pi.NarHash, "sha256:") || len(pi.NarHash) != 59 {
			t.Fatalf("NarHash not normalised: %q", pi.NarHash)
		}
	}
}

func FuzzParsePathInfo(f *testing.F) {
	for _, name := range []string{"nix-2.8-array.json", "nix-2.19-object.json", "nix-hash-object.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"x":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		infos, err := nixstore.ParsePathInfo(data)
		if err != nil {
			return
		}
		for _, pi := range infos {
			if nixstore.ValidatePath(pi.Path) != nil {
				t.Fatalf("accepted invalid path %q", pi.Path)
			}
			if _, err := nixstore.NormaliseHash(pi.NarHash); err != nil || len(pi.NarHash) != 59 {
				t.Fatalf("accepted bad hash %q", pi.NarHash)
			}
		}
		_, _ = nixstore.TopoSort(infos)
	})
}
