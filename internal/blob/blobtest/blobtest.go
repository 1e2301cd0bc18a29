// Package blobtest is the contract every blob.Store implementation passes:
// one suite, run against each store by its own tests (Run), so a new store
// (another cloud, a decorator) is held to the same promises: create-only
// writes that race safely, nothing visible before it is complete, listing,
// checksums, generations and conditional writes.
package blobtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/socioprophet/sourceos/internal/blob"
)

// Run runs the whole contract against stores made by open; each call of
// open must return a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

var contract = []struct {
	name string
	fn   func(t *testing.T, s blob.Store)
}{
	{"PutOpenStat", testPutOpenStat},
	{"Missing", testMissing},
	{"CreateOnly", testCreateOnly},
	{"Overwrite", testOverwrite},
	{"FailedReaderStoresNothing", testFailedReader},
	{"List", testList},
	{"Delete", testDelete},
	{"ConcurrentCreateOnly", testConcurrentCreateOnly},
	{"InvalidKeys", testInvalidKeys},
	{"Large", testLarge},
	{"Checksums", testChecksums},
	{"Generations", testGenerations},
	{"IfGeneration", testIfGeneration},
	{"ConcurrentIfGeneration", testConcurrentIfGeneration},
	{"LargeIfGenerationStale", testLargeIfGenerationStale},
	{"Metadata", testMetadata},
	{"ListRange", testListRange},
	{"DeleteIf", testDeleteIf},
	{"DeferredThenSync", testDeferred},
	{"Unbuffered", testUnbuffered},
	{"StatMany", testStatMany},
	{"DeleteManyIf", testDeleteManyIf},
}

var ctx = context.Background()

func put(t *testing.T, s blob.Store, key, body string, opt blob.PutOptions) error {
	t.Helper()
	return s.Put(ctx, key, strings.NewReader(body), opt)
}

func read(t *testing.T, s blob.Store, key string) string {
	t.Helper()
	r, err := s.Open(ctx, key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testPutOpenStat(t *testing.T, s blob.Store) {
	if err := put(t, s, "a/b.narinfo", "hello", blob.PutOptions{ContentType: "text/x-nix-narinfo"}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "a/b.narinfo"); got != "hello" {
		t.Fatalf("read %q", got)
	}
	info, err := s.Stat(ctx, "a/b.narinfo")
	if err != nil || info.Size != 5 || info.Key != "a/b.narinfo" || info.Updated.IsZero() {
		t.Fatalf("stat = %+v, %v", info, err)
	}
	if u := s.URL("a/b.narinfo"); !strings.HasSuffix(u, "/a/b.narinfo") || !(strings.HasPrefix(u, "gs://bkt/some/prefix/") || strings.HasPrefix(u, "file:///")) {
		t.Fatalf("URL = %s", u)
	}
}

func testMissing(t *testing.T, s blob.Store) {
	if _, err := s.Open(ctx, "nope"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat missing: %v", err)
	}
	if err := s.Delete(ctx, "nope"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
}

func testCreateOnly(t *testing.T, s blob.Store) {
	opt := blob.PutOptions{CreateOnly: true}
	if err := put(t, s, "k", "first", opt); err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "k", "second", opt); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("second create-only put: %v, want ErrExists", err)
	}
	if got := read(t, s, "k"); got != "first" {
		t.Fatalf("create-only put overwrote: %q", got)
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	for _, body := range []string{"one", "two"} {
		if err := put(t, s, "k", body, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, s, "k"); got != "two" {
		t.Fatalf("got %q", got)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		n := min(len(p), f.n)
		f.n -= n
		return n, nil
	}
	return 0, errors.New("source broke")
}

func testFailedReader(t *testing.T, s blob.Store) {
	err := s.Put(ctx, "partial", &failingReader{n: 100 << 10}, blob.PutOptions{CreateOnly: true})
	if err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Fatalf("put with a failing reader: %v", err)
	}
	if _, err := s.Stat(ctx, "partial"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failed put left an object: %v", err)
	}
	var keys []string
	_ = s.List(ctx, "", func(i blob.Info) error { keys = append(keys, i.Key); return nil })
	if len(keys) != 0 {
		t.Fatalf("a failed put left %v", keys)
	}
}

func testList(t *testing.T, s blob.Store) {
	for _, k := range []string{"x.narinfo", "y.narinfo", "nar/z.nar.zst", "nix-cache-info"} {
		if err := put(t, s, k, k, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) []string {
		var keys []string
		if err := s.List(ctx, prefix, func(i blob.Info) error {
			if i.Size != int64(len(i.Key)) {
				t.Errorf("%s: size %d", i.Key, i.Size)
			}
			keys = append(keys, i.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		return keys
	}
	if got := strings.Join(list(""), " "); got != "nar/z.nar.zst nix-cache-info x.narinfo y.narinfo" {
		t.Fatalf("list all = %s", got)
	}
	if got := strings.Join(list("nar/"), " "); got != "nar/z.nar.zst" {
		t.Fatalf("list nar/ = %s", got)
	}
	if got := strings.Join(list("ni"), " "); got != "nix-cache-info" {
		t.Fatalf("list ni = %s", got)
	}
	stop := errors.New("stop")
	if err := s.List(ctx, "", func(blob.Info) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("list did not return fn's error: %v", err)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	if err := put(t, s, "d/k", "x", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "d/k"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func testConcurrentCreateOnly(t *testing.T, s blob.Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = put(t, s, "race", strings.Repeat("x", 1000+i), blob.PutOptions{CreateOnly: true})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, blob.ErrExists):
			t.Fatalf("racing put: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won the race, want 1", won)
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	for _, k := range []string{"", "/abs", "../up", "a/../../b", "dir/"} {
		if err := put(t, s, k, "x", blob.PutOptions{}); err == nil {
			t.Errorf("put %q accepted", k)
		}
	}
}

func testLarge(t *testing.T, s blob.Store) {
	body := bytes.Repeat([]byte("0123456789abcdef"), (20<<20)/16+3) // > one GCS chunk
	if err := s.Put(ctx, "big", bytes.NewReader(body), blob.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "big"); got != string(body) {
		t.Fatalf("large object differs (%d bytes read, %d written)", len(got), len(body))
	}
}

func listed(t *testing.T, s blob.Store, key string) blob.Info {
	t.Helper()
	var found []blob.Info
	if err := s.List(ctx, key, func(i blob.Info) error {
		if i.Key == key {
			found = append(found, i)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("list %s: %d entries", key, len(found))
	}
	return found[0]
}

func stat(t *testing.T, s blob.Store, key string) blob.Info {
	t.Helper()
	info, err := s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	return info
}

// A store with Checksums gives the MD5 of what was written in Stat and
// List; Checksum gives it on every store.
func testChecksums(t *testing.T, s blob.Store) {
	body := "checksummed content"
	want := md5.Sum([]byte(body))
	if err := put(t, s, "c/k", body, blob.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	for how, info := range map[string]blob.Info{"stat": stat(t, s, "c/k"), "list": listed(t, s, "c/k")} {
		switch {
		case s.Features().Checksums && !bytes.Equal(info.MD5, want[:]):
			t.Errorf("%s: MD5 %x, want %x", how, info.MD5, want)
		case !s.Features().Checksums && info.MD5 != nil:
			t.Errorf("%s: MD5 %x from a store without checksums", how, info.MD5)
		}
	}
	var stored blob.Info
	if err := put(t, s, "c/k2", body, blob.PutOptions{Stored: &stored}); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, s, "c/k2"); stored.Key != "c/k2" || stored.Size != st.Size || stored.Generation != st.Generation || !bytes.Equal(stored.MD5, st.MD5) {
		t.Errorf("PutOptions.Stored = %+v, Stat = %+v", stored, st)
	}
	info, err := blob.Checksum(ctx, s, "c/k")
	if err != nil || !bytes.Equal(info.MD5, want[:]) || info.Size != int64(len(body)) || info.Generation != stat(t, s, "c/k").Generation {
		t.Fatalf("Checksum = %+v, %v; want MD5 %x, size %d and Stat's generation", info, err, want, len(body))
	}
	if _, err := blob.Checksum(ctx, s, "c/missing"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Checksum of a missing object: %v", err)
	}
}

// Every version of an object has its own non-zero generation; Stat and
// List agree on it, and reading does not change it.
func testGenerations(t *testing.T, s blob.Store) {
	if err := put(t, s, "g", "one", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	g1 := stat(t, s, "g").Generation
	_ = read(t, s, "g")
	if g1 == 0 || stat(t, s, "g").Generation != g1 || listed(t, s, "g").Generation != g1 {
		t.Fatalf("generation %d unstable or zero (list %d)", g1, listed(t, s, "g").Generation)
	}
	if err := put(t, s, "g", "two", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if g2 := stat(t, s, "g").Generation; g2 == g1 || g2 == 0 {
		t.Fatalf("overwrite kept generation %d", g1)
	}
}

// IfGeneration replaces the version it names and nothing else.
func testIfGeneration(t *testing.T, s blob.Store) {
	if err := put(t, s, "i", "one", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	g1 := stat(t, s, "i").Generation
	if err := put(t, s, "i", "two", blob.PutOptions{IfGeneration: g1}); err != nil {
		t.Fatalf("replace the inspected version: %v", err)
	}
	if err := put(t, s, "i", "three", blob.PutOptions{IfGeneration: g1}); !errors.Is(err, blob.ErrChanged) {
		t.Fatalf("replace a stale version: %v, want ErrChanged", err)
	}
	if got := read(t, s, "i"); got != "two" {
		t.Fatalf("after a stale replace: %q", got)
	}
	if err := put(t, s, "i-missing", "x", blob.PutOptions{IfGeneration: g1}); !errors.Is(err, blob.ErrChanged) {
		t.Fatalf("replace a missing object: %v, want ErrChanged", err)
	}
	if _, err := s.Stat(ctx, "i-missing"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failed replace stored an object: %v", err)
	}
	if err := put(t, s, "i", "x", blob.PutOptions{IfGeneration: g1, CreateOnly: true}); err == nil {
		t.Fatal("CreateOnly with IfGeneration accepted")
	}
}

// Of writers that inspected the same version, exactly one replaces it.
func testConcurrentIfGeneration(t *testing.T, s blob.Store) {
	if err := put(t, s, "ri", "base", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	g := stat(t, s, "ri").Generation
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = put(t, s, "ri", strings.Repeat("y", 100+i), blob.PutOptions{IfGeneration: g})
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both replaced generation %d", winner, i, g)
		case err == nil:
			winner = i
		case !errors.Is(err, blob.ErrChanged):
			t.Fatalf("racing replace: %v", err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer replaced the object")
	}
	if got := read(t, s, "ri"); len(got) != 100+winner {
		t.Fatalf("the object holds %d bytes, the winner wrote %d", len(got), 100+winner)
	}
}

// A stale IfGeneration upload larger than one GCS chunk stores nothing.
func testLargeIfGenerationStale(t *testing.T, s blob.Store) {
	if err := put(t, s, "li", "small", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	g := stat(t, s, "li").Generation
	if err := put(t, s, "li", "newer", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("z"), 20<<20)
	err := s.Put(ctx, "li", bytes.NewReader(body), blob.PutOptions{IfGeneration: g})
	if !errors.Is(err, blob.ErrChanged) {
		t.Fatalf("large stale replace: %v, want ErrChanged", err)
	}
	if got := read(t, s, "li"); got != "newer" {
		t.Fatalf("after a large stale replace: %q", got)
	}
}

// A store with Metadata keeps PutOptions.Metadata; others return none.
func testMetadata(t *testing.T, s blob.Store) {
	meta := map[string]string{"proof": "v1 a b"}
	if err := put(t, s, "m", "x", blob.PutOptions{Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	for how, info := range map[string]blob.Info{"stat": stat(t, s, "m"), "list": listed(t, s, "m")} {
		switch {
		case s.Features().Metadata && info.Metadata["proof"] != "v1 a b":
			t.Errorf("%s: metadata %v, want %v", how, info.Metadata, meta)
		case !s.Features().Metadata && info.Metadata != nil:
			t.Errorf("%s: metadata %v from a store without metadata", how, info.Metadata)
		}
	}
}

// ListRange gives exactly the keys in [start, end), and every key once
// when the ranges partition the namespace.
func testListRange(t *testing.T, s blob.Store) {
	keys := []string{"0a.narinfo", "5b.narinfo", "n0.narinfo", "nar/0x.nar.zst", "nar/zz.nar.zst", "nix-cache-info", "roots/a/1.json", "z9.narinfo"}
	for _, k := range keys {
		if err := put(t, s, k, k, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(start, end string) []string {
		var got []string
		var mu sync.Mutex
		if err := s.ListRange(ctx, start, end, func(i blob.Info) error {
			mu.Lock()
			defer mu.Unlock()
			if i.Size != int64(len(i.Key)) || i.Generation == 0 {
				t.Errorf("%s: size %d, generation %d", i.Key, i.Size, i.Generation)
			}
			got = append(got, i.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		return got
	}
	for _, c := range []struct{ start, end, want string }{
		{"", "", strings.Join(keys, " ")},
		{"", "5", "0a.narinfo"},
		{"5", "nar/", "5b.narinfo n0.narinfo"},
		{"nar/", "nar0", "nar/0x.nar.zst nar/zz.nar.zst"},
		{"nar/1", "nar/zz.nar.zst", ""},
		{"nix", "", "nix-cache-info roots/a/1.json z9.narinfo"},
	} {
		if got := strings.Join(list(c.start, c.end), " "); got != c.want {
			t.Errorf("ListRange(%q, %q) = %q, want %q", c.start, c.end, got, c.want)
		}
	}
	var all []string
	bounds := []string{"", "1", "n", "nar/", "nar/m", "o", ""}
	for i := 0; i+1 < len(bounds); i++ {
		all = append(all, list(bounds[i], bounds[i+1])...)
	}
	sort.Strings(all)
	if strings.Join(all, " ") != strings.Join(keys, " ") {
		t.Errorf("ranges %q together list %v, want every key once", bounds, all)
	}
}

// DeleteIf removes the version named and nothing else.
func testDeleteIf(t *testing.T, s blob.Store) {
	if err := put(t, s, "d/x", "one", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	g1 := stat(t, s, "d/x").Generation
	if err := put(t, s, "d/x", "two", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIf(ctx, "d/x", g1); !errors.Is(err, blob.ErrChanged) {
		t.Fatalf("delete of a replaced version: %v, want ErrChanged", err)
	}
	if got := read(t, s, "d/x"); got != "two" {
		t.Fatalf("a refused delete changed the object: %q", got)
	}
	if err := s.DeleteIf(ctx, "d/x", stat(t, s, "d/x").Generation); err != nil {
		t.Fatalf("delete of the current version: %v", err)
	}
	if _, err := s.Stat(ctx, "d/x"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after DeleteIf: %v", err)
	}
	if err := s.DeleteIf(ctx, "d/x", g1); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("delete of a missing object: %v, want ErrNotFound", err)
	}
}

// StatMany describes many objects as Stat does each (in batches where the
// store takes them): sizes, generations, checksums and metadata, and
// ErrNotFound for a missing key.
func testStatMany(t *testing.T, s blob.Store) {
	var keys []string
	want := map[string]blob.Info{}
	for i := range 230 {
		k := fmt.Sprintf("many/x-%03d", i)
		if i%7 == 0 {
			k = fmt.Sprintf("many-%03d.narinfo", i)
		}
		if err := put(t, s, k, strings.Repeat("b", i), blob.PutOptions{Metadata: map[string]string{"m": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		want[k] = stat(t, s, k)
	}
	keys = append(keys, "many/missing", "missing.narinfo")
	infos, errs := blob.StatMany(ctx, s, keys, 4)
	for i, k := range keys {
		w, ok := want[k]
		switch {
		case !ok && !errors.Is(errs[i], blob.ErrNotFound):
			t.Errorf("%s: %v, want ErrNotFound", k, errs[i])
		case !ok:
		case errs[i] != nil:
			t.Errorf("%s: %v", k, errs[i])
		case infos[i].Key != k || infos[i].Size != w.Size || infos[i].Generation != w.Generation ||
			!bytes.Equal(infos[i].MD5, w.MD5) || infos[i].Metadata["m"] != w.Metadata["m"] || !infos[i].Updated.Equal(w.Updated):
			t.Errorf("%s: StatMany %+v, Stat %+v", k, infos[i], w)
		}
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, errs := blob.StatMany(ctx2, s, keys, 4); errs[len(keys)-1] == nil {
		t.Error("StatMany with an ended context reported a key as found")
	}
}

// DeleteManyIf deletes each object at its generation, as DeleteIf does:
// ErrChanged for one replaced since, ErrNotFound for one gone.
func testDeleteManyIf(t *testing.T, s blob.Store) {
	var objs []blob.Cond
	for i := range 150 {
		k := fmt.Sprintf("del/x-%03d", i)
		if err := put(t, s, k, "one", blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, blob.Cond{Key: k, Gen: stat(t, s, k).Generation})
	}
	if err := put(t, s, objs[3].Key, "two", blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, objs[120].Key); err != nil {
		t.Fatal(err)
	}
	errs := blob.DeleteManyIf(ctx, s, objs, 4)
	for i, o := range objs {
		switch i {
		case 3:
			if !errors.Is(errs[i], blob.ErrChanged) {
				t.Errorf("%s replaced: %v, want ErrChanged", o.Key, errs[i])
			}
		case 120:
			if !errors.Is(errs[i], blob.ErrNotFound) {
				t.Errorf("%s gone: %v, want ErrNotFound", o.Key, errs[i])
			}
		default:
			if errs[i] != nil {
				t.Errorf("%s: %v", o.Key, errs[i])
			}
		}
	}
	var left []string
	if err := s.List(ctx, "del/", func(i blob.Info) error { left = append(left, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != objs[3].Key {
		t.Fatalf("after DeleteManyIf: %v, want only %s", left, objs[3].Key)
	}
}

// A Deferred write is visible at once, create-only as any other, and
// Sync (a no-op where writes are durable when acknowledged) succeeds.
func testDeferred(t *testing.T, s blob.Store) {
	opt := blob.PutOptions{CreateOnly: true, Deferred: true}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = put(t, s, fmt.Sprintf("def/%d", i), "body", opt); errs[i] == nil {
				errs[i] = blob.Sync(ctx, s)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("deferred put %d: %v", i, err)
		}
		if got := read(t, s, fmt.Sprintf("def/%d", i)); got != "body" {
			t.Fatalf("def/%d = %q", i, got)
		}
	}
	if err := put(t, s, "def/0", "again", opt); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("deferred create-only over an object: %v", err)
	}
}

// An unbuffered write is a write like any other, in one request.
func testUnbuffered(t *testing.T, s blob.Store) {
	var stored blob.Info
	opt := blob.PutOptions{CreateOnly: true, Unbuffered: true, Stored: &stored, Metadata: map[string]string{"k": "v"}}
	if err := s.Put(ctx, "u/x", io.MultiReader(strings.NewReader("un"), strings.NewReader("buffered")), opt); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "u/x"); got != "unbuffered" || stored.Size != 10 || stored.Generation != stat(t, s, "u/x").Generation {
		t.Fatalf("read %q, stored %+v", got, stored)
	}
	if err := put(t, s, "u/x", "again", blob.PutOptions{CreateOnly: true, Unbuffered: true}); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("unbuffered create-only over an object: %v", err)
	}
	err := s.Put(ctx, "u/partial", &failingReader{n: 1000}, blob.PutOptions{Unbuffered: true})
	if err == nil {
		t.Fatal("an unbuffered write from a failing reader succeeded")
	}
	if _, err := s.Stat(ctx, "u/partial"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failed unbuffered write left an object: %v", err)
	}
}
