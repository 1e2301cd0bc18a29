package gc

import (
	"math/rand/v2"
	"testing"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
)

func randomHash(r *rand.Rand) cachefmt.Hash {
	var h cachefmt.Hash
	for i := range h {
		h[i] = byte(r.IntN(256))
	}
	return h
}

// deleteAll runs the waves to the end, deleting every candidate offered;
// it returns the wave each candidate went in (-1: never).
func deleteAll(t *table) []int {
	at := make([]int, t.len())
	for i := range at {
		at[i] = -1
	}
	o := t.order()
	wave := o.first()
	for n := 0; len(wave) > 0; n++ {
		for _, i := range wave {
			if at[i] >= 0 {
				panic("offered twice")
			}
			at[i] = n
			t.flag[i] |= fDeleted
		}
		wave = o.next(wave)
	}
	return at
}

// Waves delete each narinfo only after every doomed narinfo that refers
// to it, so a GC killed between two waves leaves no narinfo referring to
// a missing one; a reference cycle goes in one last wave; nothing is
// offered twice or left behind.
func TestWavesFollowReferences(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		tb := newTable(0)
		n := 200 + r.IntN(800)
		hashes := make([]cachefmt.Hash, n)
		for i := range hashes {
			hashes[i] = randomHash(r)
		}
		refs := make([][]int, n)
		for i := range n {
			for range r.IntN(4) { // references point to earlier paths: a DAG
				if i > 0 {
					refs[i] = append(refs[i], r.IntN(i))
				}
			}
			if round%4 == 3 && i > 10 && r.IntN(50) == 0 { // now and then a cycle
				refs[i-10] = append(refs[i-10], i)
			}
		}
		for i := range n {
			var rs []string
			for _, j := range refs[i] {
				rs = append(rs, hashes[j].String())
			}
			tb.add(hashes[i], blob.Info{Generation: int64(i + 1)}, false, rs, true)
		}
		tb.finish()
		at := deleteAll(tb)
		cyclic := round%4 == 3
		for i := range n {
			ti := tb.find(hashes[i])
			if at[ti] < 0 {
				t.Fatalf("round %d: path %d never deleted", round, i)
			}
			for _, j := range refs[i] {
				tj := tb.find(hashes[j])
				if at[tj] <= at[ti] && !(cyclic && at[tj] == at[ti]) {
					t.Fatalf("round %d: path %d (wave %d) refers to path %d, deleted first (wave %d)", round, i, at[ti], j, at[tj])
				}
			}
		}
	}
}

// A young candidate keeps what it refers to, transitively; a failed
// delete holds what the narinfo refers to; a reference to a hash that
// shares its 8-byte prefix with another candidate keeps both rather than
// neither.
func TestSpareHoldAndPrefixCollisions(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	a, b, c, d := randomHash(r), randomHash(r), randomHash(r), randomHash(r)
	twin := c
	twin[19] ^= 1 // same prefix as c
	tb := newTable(0)
	tb.add(a, blob.Info{Generation: 1}, true, []string{b.String()}, true) // young: keeps b and what b needs
	tb.add(b, blob.Info{Generation: 2}, false, []string{c.String()}, true)
	tb.add(c, blob.Info{Generation: 3}, false, nil, true)
	tb.add(twin, blob.Info{Generation: 4}, false, nil, true)
	tb.add(d, blob.Info{Generation: 5}, false, []string{twin.String()}, true)
	tb.finish()
	tb.spare([]int32{tb.find(a)})
	for _, h := range []cachefmt.Hash{a, b, c, twin} {
		if tb.doomed(tb.find(h)) {
			t.Errorf("%s doomed; want spared (young, or reached from a young one; twin shares c's prefix)", h)
		}
	}
	if !tb.doomed(tb.find(d)) {
		t.Error("d spared")
	}
	tb2 := newTable(0)
	tb2.add(a, blob.Info{Generation: 1}, false, []string{b.String()}, true)
	tb2.add(b, blob.Info{Generation: 2}, false, []string{c.String()}, true)
	tb2.add(c, blob.Info{Generation: 3}, false, nil, true)
	tb2.finish()
	o := tb2.order()
	w := o.first()
	if len(w) != 1 || w[0] != tb2.find(a) {
		t.Fatalf("first wave %v, want a only", w)
	}
	tb2.hold(w[0]) // a's delete failed
	if next := o.next(w); len(next) != 0 || tb2.doomed(tb2.find(b)) || tb2.doomed(tb2.find(c)) {
		t.Fatalf("after a failed delete of a: next wave %v, b doomed %v, c doomed %v", next, tb2.doomed(tb2.find(b)), tb2.doomed(tb2.find(c)))
	}
}
