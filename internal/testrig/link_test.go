package testrig_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/socioprophet/sourceos/internal/testrig"
)

// Every request waits the link's latency; bytes cross at its bandwidth,
// shared by all connections.
func TestLinkAddsLatencyAndCapsBandwidth(t *testing.T) {
	l := testrig.StartLink(t, testrig.LinkOptions{Latency: 40 * time.Millisecond, Bandwidth: 20 << 20, Buckets: []string{"b"}})
	c := testrig.StartLinkClient(t)
	start := time.Now()
	for i := range 5 {
		put(t, c, "b", fmt.Sprintf("small-%d", i), []byte("x"))
	}
	if d := time.Since(start); d < 5*40*time.Millisecond {
		t.Fatalf("5 sequential requests took %v, less than 5 latencies", d)
	}
	start = time.Now()
	var wg sync.WaitGroup
	for i := range 4 { // 4 × 2 MiB at 20 MiB/s: at least 400 ms together
		wg.Add(1)
		go func() {
			defer wg.Done()
			put(t, c, "b", fmt.Sprintf("big-%d", i), bytes.Repeat([]byte{byte(i)}, 2<<20))
		}()
	}
	wg.Wait()
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("8 MiB over a 20 MiB/s link took %v", d)
	}
	resp, err := http.Get(l.URL("b", "big-1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) != 2<<20 || body[0] != 1 {
		t.Fatalf("public read through the link: %d bytes", len(body))
	}
	if st := l.Stats(); st.Requests < 10 || st.Up < 8<<20 || st.Down < 2<<20 {
		t.Fatalf("link stats %+v", st)
	}
}

func put(t *testing.T, c *storage.Client, bucket, name string, data []byte) {
	t.Helper()
	w := c.Bucket(bucket).Object(name).NewWriter(context.Background())
	w.ChunkSize = 0 // one request, no 16 MiB buffer per object
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// Listings come in pages of 1000 with prefixes folded by a delimiter.
func TestMemGCSListsInPages(t *testing.T) {
	testrig.StartLink(t, testrig.LinkOptions{Buckets: []string{"b"}})
	c := testrig.StartLinkClient(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 2500 {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer func() { <-sem; wg.Done() }(); put(t, c, "b", fmt.Sprintf("p/%04d", i), nil) }()
	}
	wg.Wait()
	put(t, c, "b", "q/deep/x", nil)
	count := func(q *storage.Query) (objects, prefixes int) {
		it := c.Bucket("b").Objects(context.Background(), q)
		for {
			a, err := it.Next()
			if err == iterator.Done {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Prefix != "" {
				prefixes++
			} else {
				objects++
			}
		}
	}
	if n, _ := count(&storage.Query{Prefix: "p/"}); n != 2500 {
		t.Fatalf("listed %d of 2500", n)
	}
	if n, _ := count(&storage.Query{StartOffset: "p/1000", EndOffset: "p/2000"}); n != 1000 {
		t.Fatalf("range listed %d, want 1000", n)
	}
	if n, p := count(&storage.Query{Delimiter: "/"}); n != 0 || p != 2 {
		t.Fatalf("delimited: %d objects, %d prefixes; want 0, 2", n, p)
	}
}

// The stand-in's listings follow seeded objects, writes, deletes and
// objects deleted then written again, in order and in ranges, without
// sorting the bucket on every change; a listing that selects fields gets
// only those; custom metadata past 8 KiB is refused, as GCS refuses it.
func TestMemGCSListingFollowsChanges(t *testing.T) {
	link := testrig.StartLink(t, testrig.LinkOptions{Buckets: []string{"b"}})
	c := testrig.StartLinkClient(t)
	want := map[string]bool{}
	var seed []testrig.SeedObject
	for i := range 3000 {
		n := fmt.Sprintf("s/%05d", i*3)
		seed = append(seed, testrig.SeedObject{Name: n, Data: []byte("x"), Metadata: map[string]string{"k": "v"}})
		want[n] = true
	}
	if _, err := link.GCS.Seed("b", seed); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		var got []string
		q := &storage.Query{Prefix: "s/"}
		if err := q.SetAttrSelection([]string{"Name", "Metadata"}); err != nil {
			t.Fatal(err)
		}
		it := c.Bucket("b").Objects(context.Background(), q)
		for {
			a, err := it.Next()
			if err == iterator.Done {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Size != 0 || a.Metadata["k"] != "v" {
				t.Fatalf("%s: %s listed with size %d, metadata %v (selected: name, metadata)", step, a.Name, a.Size, a.Metadata)
			}
			got = append(got, a.Name)
		}
		var exp []string
		for n := range want {
			exp = append(exp, n)
		}
		sort.Strings(exp)
		if !sort.StringsAreSorted(got) || strings.Join(got, " ") != strings.Join(exp, " ") {
			t.Fatalf("%s: listed %d names, want %d (in order)", step, len(got), len(exp))
		}
	}
	check("seeded")
	ctx := context.Background()
	for i := range 3000 {
		switch i % 3 {
		case 0: // delete a seeded one
			n := fmt.Sprintf("s/%05d", i*3)
			if err := c.Bucket("b").Object(n).Delete(ctx); err != nil {
				t.Fatal(err)
			}
			delete(want, n)
		case 1: // write a new one between seeded ones
			n := fmt.Sprintf("s/%05d", i*3+1)
			w := c.Bucket("b").Object(n).NewWriter(ctx)
			w.Metadata = map[string]string{"k": "v"}
			if _, err := w.Write([]byte("y")); err != nil || w.Close() != nil {
				t.Fatal(err)
			}
			want[n] = true
		}
		if i%500 == 499 {
			check(fmt.Sprintf("after %d changes", i+1))
		}
	}
	for i := 0; i < 300; i += 3 { // written again after being deleted
		n := fmt.Sprintf("s/%05d", i*3)
		w := c.Bucket("b").Object(n).NewWriter(ctx)
		w.Metadata = map[string]string{"k": "v"}
		if _, err := w.Write([]byte("z")); err != nil || w.Close() != nil {
			t.Fatal(err)
		}
		want[n] = true
	}
	check("rewritten")
	w := c.Bucket("b").Object("big").NewWriter(ctx)
	w.Metadata = map[string]string{"k": strings.Repeat("v", 8<<10)}
	w.Write([]byte("x"))
	if err := w.Close(); err == nil {
		t.Fatal("an object with more than 8 KiB of metadata was stored")
	}
}
