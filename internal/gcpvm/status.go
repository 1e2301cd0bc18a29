package gcpvm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/redact"
)

// StatusKey is the object, under the build's GCS prefix, that says where a
// custom build is.
const StatusKey = "status.json"

// State is the phase of a custom build.
type State string

// The states a build goes through: building, then complete or error.
const (
	Building State = "building"
	Complete State = "complete"
	Failed   State = "error"
)

// Status is the content of status.json.
type Status struct {
	State       State     `json:"state"`
	BuildID     string    `json:"buildId,omitempty"`
	UID         string    `json:"uid,omitempty"`
	Version     string    `json:"version,omitempty"`
	Lane        string    `json:"lane"` // gcp-vm, github or local
	StartedAt   time.Time `json:"startedAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	ArtifactURL string    `json:"artifactUrl,omitempty"` // when complete
	Error       string    `json:"error,omitempty"`       // when error: the reason
}

// maxReason bounds the error text in status.json; the head says what
// failed, the tail carries the end of a build log.
const maxReason = 4096

// reason is err's text with every secret masked, shortened to maxReason.
func reason(err error, red *redact.Redactor) string {
	s := red.String(err.Error())
	if len(s) <= maxReason {
		return s
	}
	const head = 1024
	return s[:head] + "\n…\n" + s[len(s)-(maxReason-head):]
}

// statusWriter writes status.json. A nil store writes nothing (no GCS
// prefix configured).
type statusWriter struct {
	store blob.Store
	where string // for logs: the prefix
	base  Status
	clock func() time.Time
}

// write records st over the base fields (ids, lane, start time).
func (w *statusWriter) write(ctx context.Context, state State, artifactURL, errText string) (Status, error) {
	st := w.base
	st.State, st.ArtifactURL, st.Error = state, artifactURL, errText
	st.UpdatedAt = w.clock().UTC()
	if w.store == nil {
		return st, nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	err = w.store.Put(ctx, StatusKey, bytes.NewReader(append(b, '\n')), blob.PutOptions{
		ContentType: "application/json",
		// Public objects are cached for an hour by default: a poller
		// must see every change.
		CacheControl: "no-store",
	})
	if err != nil {
		return st, fmt.Errorf("write %s/%s: %w", w.where, StatusKey, err)
	}
	return st, nil
}

// ReadStatus reads status.json from store; ok is false when there is none.
func ReadStatus(ctx context.Context, store blob.Store) (st Status, ok bool, err error) {
	r, err := store.Open(ctx, StatusKey)
	if errors.Is(err, blob.ErrNotFound) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("read %s: %w", StatusKey, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return Status{}, false, fmt.Errorf("read %s: %w", StatusKey, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, false, fmt.Errorf("parse %s: %w", StatusKey, err)
	}
	return st, true, nil
}
