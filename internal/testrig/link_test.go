package testrig_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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
