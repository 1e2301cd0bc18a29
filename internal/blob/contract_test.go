package blob_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/blob/blobtest"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestDirContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestGCSContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		testrig.StartGCS(t, "bkt")
		s, err := blob.Open(context.Background(), "gs://bkt/some/prefix")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The lean GCS stand-in behind a simulated link holds to the same
// contract as fake-gcs-server, so what is measured on the link is what a
// real bucket would do.
func TestMemGCSLinkContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		testrig.StartLink(t, testrig.LinkOptions{Latency: time.Millisecond, Bandwidth: 1 << 30, Buckets: []string{"bkt"}})
		s, err := blob.Open(context.Background(), "gs://bkt/some/prefix")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// fake-gcs-server behind the link: the link itself changes nothing.
func TestGCSThroughLinkContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		g := testrig.StartGCS(t, "bkt")
		testrig.StartLink(t, testrig.LinkOptions{Latency: time.Millisecond, Backend: g.Host})
		s, err := blob.Open(context.Background(), "gs://bkt/some/prefix")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Against GCS (the lean stand-in and fake-gcs-server, each behind the
// link), StatMany and DeleteManyIf send batch requests of up to 100 calls,
// not a request per object.
func TestGCSBatchesRequests(t *testing.T) {
	for _, backend := range []string{"memgcs", "fake-gcs-server"} {
		t.Run(backend, func(t *testing.T) {
			o := testrig.LinkOptions{Latency: time.Millisecond, Buckets: []string{"bkt"}}
			if backend != "memgcs" {
				o.Backend = testrig.StartGCS(t, "bkt").Host
			}
			link := testrig.StartLink(t, o)
			s, err := blob.Open(context.Background(), "gs://bkt/p")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for i := range 250 {
				k := fmt.Sprintf("k/%03d", i)
				if err := s.Put(context.Background(), k, strings.NewReader("x"), blob.PutOptions{}); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			before := link.Stats()
			infos, errs := blob.StatMany(context.Background(), s, keys, 8)
			objs := make([]blob.Cond, len(keys))
			for i, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
				objs[i] = blob.Cond{Key: keys[i], Gen: infos[i].Generation}
			}
			for _, err := range blob.DeleteManyIf(context.Background(), s, objs, 8) {
				if err != nil {
					t.Fatal(err)
				}
			}
			got := link.Stats().Sub(before)
			if got.Kinds["batch"] != 6 || got.Requests != 6 {
				t.Fatalf("250 look-ups and 250 deletes took %v requests (%v), want 6 batches", got.Requests, got.Kinds)
			}
		})
	}
}
