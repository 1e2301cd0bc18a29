package blob_test

import (
	"context"
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
