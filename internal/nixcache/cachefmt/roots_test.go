package cachefmt

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
)

const storeA = "/nix/store/0svp6yqk91kgf5g7xr90xy3yjsk0jp0a-a"

func testRoot(t testing.TB, sk signature.SecretKey) (*Root, []byte) {
	t.Helper()
	r := &Root{Version: RootVersion, Name: "desktop-x86_64-iso-stable", BuildID: "gh-123", Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Paths:   []string{storeA},
		Closure: []string{"0svp6yqk91kgf5g7xr90xy3yjsk0jp0a", "1svp6yqk91kgf5g7xr90xy3yjsk0jp0a"}}
	if err := r.Sign(sk); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestParseRoot(t *testing.T) {
	sk := testKey(t, "roots-1")
	pk := sk.ToPublicKey()
	r, good := testRoot(t, sk)
	got, err := ParseRoot(good, pk)
	if err != nil || got.Key() != "roots/desktop-x86_64-iso-stable/20260501T120000Z-gh-123.json" {
		t.Fatalf("ParseRoot = %+v, %v", got, err)
	}
	other := testKey(t, "roots-1")
	_, forged := testRoot(t, other)
	edit := func(from, to string) []byte { return bytes.Replace(good, []byte(from), []byte(to), 1) }
	big := append(append([]byte(nil), good[:len(good)-1]...), []byte(`,"x":"`+strings.Repeat("a", MaxRootSize)+`"}`)...)
	for name, b := range map[string][]byte{
		"another key":       forged,
		"unknown member":    edit(`"version":1`, `"version":1,"keep":"all"`),
		"member twice":      edit(`"version":1`, `"version":1,"version":1`),
		"case variant":      edit(`"version":1`, `"version":1,"Version":1`),
		"version 2":         edit(`"version":1`, `"version":2`),
		"name":              edit(`"name":"desktop`, `"name":"../desktop`),
		"closure tampered":  edit(`"0svp6yqk91kgf5g7xr90xy3yjsk0jp0a"`, `"2svp6yqk91kgf5g7xr90xy3yjsk0jp0a"`),
		"closure unordered": edit(`"0svp6yqk91kgf5g7xr90xy3yjsk0jp0a","1svp`, `"1svp6yqk91kgf5g7xr90xy3yjsk0jp0a","0svp`),
		"not a hash part":   edit(`"0svp6yqk91kgf5g7xr90xy3yjsk0jp0a"`, `"0svp6yqk91kgf5g7xr90xy3yjsk0jp0e"`),
		"path":              edit(storeA, "/tmp/x"),
		"pinned added":      edit(`"version":1`, `"version":1,"pinned":true`),
		"trailing data":     append(append([]byte(nil), good...), []byte(" {}")...),
		"too large":         big,
		"not JSON":          []byte("{"),
	} {
		if _, err := ParseRoot(b, pk); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Stored under another name than its content gives: refused.
	s, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for key, ok := range map[string]bool{r.Key(): true, "roots/desktop-x86_64-iso-stable/20990101T000000Z-gh-123.json": false,
		"roots/desktop-x86_64-iso-stable/20260501T120000Z-gh-123.pinned.json": false} {
		if err := s.Put(context.Background(), key, bytes.NewReader(good), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		info, _ := s.Stat(context.Background(), key)
		ref, parsed := ParseRootKey(info)
		_, err := ReadRoot(context.Background(), s, ref, pk)
		if !parsed || (err == nil) != ok {
			t.Errorf("root stored as %s: parsed %v, read error %v", key, parsed, err)
		}
	}
}

func TestParseRootKey(t *testing.T) {
	for key, want := range map[string]string{
		"roots/rel/20260501T120000Z-b1.pinned.json":   "rel pinned",
		"roots/rel/20260501T120000Z-b1.inflight.json": "rel inflight",
		"roots/a.b_c-d/20260501T120000Z-h0123.json":   "a.b_c-d",
		"roots/rel/20260501T120000Z-b.1.json":         "",
		"roots/Rel/20260501T120000Z-b1.json":          "",
		"roots/rel/2026-05-01-b1.json":                "",
		"roots/rel/x/20260501T120000Z-b1.json":        "",
		"roots/rel/20260501T120000Z-b1.json.tmp":      "",
	} {
		ref, ok := ParseRootKey(blob.Info{Key: key})
		got := ""
		if ok {
			got = ref.Name
			if ref.Pinned {
				got += " pinned"
			}
			if ref.InFlight {
				got += " inflight"
			}
		}
		if got != want {
			t.Errorf("ParseRootKey(%s) = %q, want %q", key, got, want)
		}
	}
}

func TestRootName(t *testing.T) {
	for _, c := range []struct {
		parts []string
		want  string
	}{
		{[]string{"desktop", "x86_64", "iso", "stable"}, "desktop-x86_64-iso-stable"},
		{[]string{"Server/../Candidate"}, "server-..-candidate"},
		{[]string{".."}, "root"},
		{[]string{"édition"}, "dition"},
	} {
		got := RootName(c.parts...)
		if got != c.want || !RootNameRe.MatchString(got) {
			t.Errorf("RootName(%q) = %q, want %q", c.parts, got, c.want)
		}
	}
}

// IDs that are not plain names (dots, slashes, long) are hashed in
// object names, and the key still parses.
func TestRootKeyOfOddBuildIDs(t *testing.T) {
	for _, id := range []string{"1.2.3", "a/b", strings.Repeat("x", 100), "run 42"} {
		r := &Root{Name: "n", BuildID: id, Time: time.Unix(0, 0)}
		if _, ok := ParseRootKey(blob.Info{Key: r.Key()}); !ok || strings.Contains(r.Key(), "/b") {
			t.Errorf("build id %q: key %s", id, r.Key())
		}
	}
}

func FuzzParseRoot(f *testing.F) {
	sk := testKey(f, "fuzz-1")
	_, good := testRoot(f, sk)
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRoot(b, sk.ToPublicKey())
		if err == nil && (r.check() != nil || !RootNameRe.MatchString(r.Name)) {
			t.Fatalf("accepted an invalid root %+v", r)
		}
	})
}
