package push

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// writeRoot signs and stores r (replacing an earlier version of the same
// name, which only an in-flight root has).
func writeRoot(ctx context.Context, p *pusher, r *cachefmt.Root) error {
	if err := r.Sign(p.sk); err != nil {
		return err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return p.retry(ctx, func() error {
		return p.store.Put(ctx, r.Key(), bytes.NewReader(body),
			blob.PutOptions{ContentType: "application/json", SizeHint: int64(len(body)), Unbuffered: len(body) < 1<<20})
	})
}

// newRoot is the root of a session at time now.
func (s *Session) newRoot(tops []string, hashes []string) *cachefmt.Root {
	ro := s.p.o.Root
	name := ro.Name
	if name == "" {
		name = "push"
	}
	id := ro.BuildID
	if id == "" {
		id = s.buildID()
	}
	sort.Strings(hashes)
	hashes = dedupe(hashes)
	paths := append([]string(nil), tops...)
	sort.Strings(paths)
	return &cachefmt.Root{Version: cachefmt.RootVersion, Name: name, BuildID: id, Time: s.p.o.Now().UTC().Truncate(time.Second),
		Pinned: ro.Pin, Paths: dedupe(paths), Closure: hashes}
}

// buildID is the session's build id when none is configured: random,
// made once.
func (s *Session) buildID() string {
	s.idOnce.Do(func() {
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.id = "push-" + hex.EncodeToString(b[:])
	})
	return s.id
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, v := range sorted {
		if i == 0 || sorted[i-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// recordRoot writes the root of the session: tops and every path the
// session holds; then it removes the session's in-flight root, if any.
// The root is what keeps the paths the session found present: it is
// written within Window/2 of a GC check that found no GC (fast path), or
// after those paths were looked up again (slow path: secureForRoot).
func (s *Session) recordRoot(ctx context.Context, tops []string) error {
	for slow := false; ; slow = true {
		deadline, err := s.secureForRoot(ctx, slow)
		if err != nil {
			return err
		}
		r := s.finalRoot(tops)
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if !deadline.IsZero() {
			wctx, cancel = context.WithDeadline(ctx, deadline)
		}
		err = writeRoot(wctx, s.p, r)
		expired := !deadline.IsZero() && wctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case err == nil:
			s.p.o.Log.Info("cache root recorded", "root", r.Key(), "paths", len(r.Closure))
			return s.dropInFlight(ctx)
		case !expired:
			return fmt.Errorf("cache push: record root %s: %w", r.Key(), err)
		}
		s.p.o.Log.Info("cache push: the root was not written while the GC check held; looking up again the paths found present", "root", r.Key())
	}
}

// finalRoot is the session's root: tops and every path it holds.
func (s *Session) finalRoot(tops []string) *cachefmt.Root {
	var hashes []string
	s.mu.Lock()
	for p, n := range s.nodes {
		if n.ok {
			hashes = append(hashes, nixstore.HashPart(p))
		}
	}
	s.mu.Unlock()
	return s.newRoot(tops, hashes)
}

// secureForRoot makes sure the root names no path a GC deleted: paths
// found present that no narinfo of the session relied on never went
// through guard. On the fast path (unless slow) it returns when the
// check it relies on expires: the root must be written by then.
// Otherwise the paths found present are looked up again (secureFound),
// those gone are pushed again, and the root needs no deadline.
func (s *Session) secureForRoot(ctx context.Context, slow bool) (time.Time, error) {
	if !slow {
		if until, ok := s.fastUntil(ctx); ok {
			return until, nil
		}
	}
	if err := s.secureFound(ctx); err != nil {
		return time.Time{}, fmt.Errorf("cache push: look up again the paths found present: %w", err)
	}
	if err := s.Wait(ctx); err != nil {
		return time.Time{}, err
	}
	if err := blob.Sync(ctx, s.p.store); err != nil {
		return time.Time{}, err
	}
	if sum := s.Summary(); sum.Failed > 0 {
		return time.Time{}, &Error{Failed: sum.Failed, Errors: sum.Errors}
	}
	return time.Time{}, nil
}
