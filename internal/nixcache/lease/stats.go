package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/socioprophet/sourceos/internal/blob"
)

// StatsKey is where GC records what it left in the cache, for pushes to
// size their presence check by (a cache far larger than a closure is not
// worth listing).
const StatsKey = "gc/stats"

// objectsMeta is the metadata of StatsKey holding the object count, so
// that a look-up (no read) gives it.
const objectsMeta = "nixcache-objects"

// Stats is what a GC run left in the cache.
type Stats struct {
	// Objects is how many objects the cache held when the run ended.
	Objects int64 `json:"objects"`
}

// WriteStats records s (unconditionally: the latest run's count wins).
func WriteStats(ctx context.Context, store blob.Store, s Stats) error {
	body, _ := json.Marshal(s) // a struct of numbers always marshals
	err := store.Put(ctx, StatsKey, strings.NewReader(string(body)+"\n"), blob.PutOptions{ContentType: "application/json",
		Metadata: map[string]string{objectsMeta: strconv.FormatInt(s.Objects, 10)}, SizeHint: int64(len(body) + 1)})
	if err != nil {
		return fmt.Errorf("record %s: %w", StatsKey, err)
	}
	return nil
}

// ReadStats reads what the last GC recorded; false when none did (or the
// record does not parse: a hint, not a promise, so a bad one is ignored).
// On a store that keeps metadata a look-up suffices.
func ReadStats(ctx context.Context, store blob.Store) (Stats, bool) {
	if store.Features().Metadata {
		info, err := store.Stat(ctx, StatsKey)
		if err != nil {
			return Stats{}, false
		}
		n, err := strconv.ParseInt(info.Metadata[objectsMeta], 10, 64)
		return Stats{Objects: n}, err == nil && n >= 0
	}
	rc, err := store.Open(ctx, StatsKey)
	if err != nil {
		return Stats{}, false
	}
	defer rc.Close()
	var s Stats
	err = json.NewDecoder(io.LimitReader(rc, 4096)).Decode(&s)
	return s, err == nil && s.Objects >= 0
}
