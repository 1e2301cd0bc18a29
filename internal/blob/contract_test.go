package blob_test

import (
	"context"
	"testing"

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
