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
	"github.com/socioprophet/sourceos/internal/strictjson"
)

// StatusKey is the object, under the build's GCS prefix, that says where a
// custom build is.
const StatusKey = "status.json"

// State is the phase of a custom build.
type State string

// The states a build goes through: building, then built (the unsigned
// image and its build record are in the prefix), then complete once the
// trusted step (`mage gcp:attest`) has hashed, signed and verified it; error
// from any of them.
const (
	Building State = "building"
	Built    State = "built"
	Complete State = "complete"
	Failed   State = "error"
)

// The lanes a status names (its lane field). LaneVM is the name the shell
// pipeline's VM lane wrote, which the self-serve backend reads.
const (
	LaneVM    = "gcp"
	LaneCI    = "ci"
	LaneLocal = "local"
)

// OldState is a phase as the self-serve backend of the shell pipeline reads
// it from the status field: it knows building, complete and error only.
type OldState string

// Old returns the phase as the old backend knows it: a build that is
// built waits for its signing, so it is still building.
func (s State) Old() OldState {
	switch s {
	case Building, Built:
		return "building"
	case Complete:
		return "complete"
	}
	return "error"
}

// Status is the content of status.json. Beside its own fields it carries
// those the self-serve backend of the shell pipeline polls, with the values
// that pipeline wrote (WriteStatus derives them): status, artifact, run;
// lane is common to both.
type Status struct {
	State       State     `json:"state"`
	BuildID     string    `json:"buildId,omitempty"`
	UID         string    `json:"uid,omitempty"`
	Version     string    `json:"version,omitempty"`
	Lane        string    `json:"lane"` // LaneVM, LaneCI or LaneLocal
	StartedAt   time.Time `json:"startedAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	ArtifactURL string    `json:"artifactUrl,omitempty"` // when built or complete
	Signed      bool      `json:"signed"`                // complete, with a signature
	Error       string    `json:"error,omitempty"`       // when error: the reason

	// OldStatus is State as the old backend knows it (State.Old).
	OldStatus OldState `json:"status"`
	// Artifact is the artifact's URL once complete, as the old pipeline
	// wrote it (gs://…, a netboot set's manifest); empty before.
	Artifact string `json:"artifact,omitempty"`
	// Run is the GitHub Actions run (its id) on the GitHub lane.
	Run string `json:"run,omitempty"`
}

// withOldFields sets the old backend's fields from the others.
func (st Status) withOldFields() Status {
	st.OldStatus, st.Artifact = st.State.Old(), ""
	if st.State == Complete {
		st.Artifact = st.ArtifactURL
	}
	return st
}

// maxStatusBytes bounds what ReadStatus reads: the prefix is writable by
// the build machine, which runs user code.
const maxStatusBytes = 64 << 10

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
	return st, w.put(ctx, st)
}

// put writes st as status.json.
func (w *statusWriter) put(ctx context.Context, st Status) error {
	st.UpdatedAt = w.clock().UTC()
	if w.store == nil {
		return nil
	}
	if err := WriteStatus(ctx, w.store, st); err != nil {
		return fmt.Errorf("%s: %w", w.where, err)
	}
	return nil
}

// WriteStatus writes st as status.json in store, uncached, with the old
// backend's fields derived from the others.
func WriteStatus(ctx context.Context, store blob.Store, st Status) error {
	b, err := json.MarshalIndent(st.withOldFields(), "", "  ")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	err = store.Put(ctx, StatusKey, bytes.NewReader(append(b, '\n')), blob.PutOptions{
		ContentType: "application/json",
		// Public objects are cached for an hour by default: a poller
		// must see every change.
		CacheControl: "no-store",
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", StatusKey, err)
	}
	return nil
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
	b, err := io.ReadAll(io.LimitReader(r, maxStatusBytes+1))
	if err != nil {
		return Status{}, false, fmt.Errorf("read %s: %w", StatusKey, err)
	}
	if len(b) > maxStatusBytes {
		return Status{}, false, fmt.Errorf("read %s: larger than %d bytes", StatusKey, maxStatusBytes)
	}
	if err := strictjson.Unmarshal(b, &st); err != nil {
		return Status{}, false, fmt.Errorf("parse %s: %w", StatusKey, err)
	}
	return st, true, nil
}
