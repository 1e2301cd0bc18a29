package gc

import (
	"sort"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
)

// table holds, compactly, every narinfo no kept root names: the candidates
// for deletion. Per narinfo it keeps the packed hash part, the generation
// and size listed, a few flags and its references as the 8-byte prefixes
// of their packed hashes (about 40 bytes and 8 per reference), so a cache
// of millions of objects fits in tens of MiB. References are what a
// verified push proof or a narinfo signed by the cache's key lists; a
// reference resolves to every candidate whose hash has its prefix (a
// collision only keeps more, or orders more, than needed).
type table struct {
	hash []cachefmt.Hash
	gen  []int64
	size []uint32
	flag []uint8
	// off[i]:off[i+1] are i's references in refs, as listed; those read
	// later from a narinfo are lateRefs[lateOff[j]:lateOff[j+1]] for
	// j = late[i] (-1: none).
	off      []uint32
	refs     []uint64
	late     []int32
	lateOff  []uint32
	lateRefs []uint64
	// byHash orders the candidates by hash, for look-ups (finish).
	byHash []int32
}

const (
	fYoung   uint8 = 1 << iota // within the grace period
	fKnown                     // references known (and trusted)
	fSpared                    // kept after all: young, or something kept needs it
	fDeleted                   // deleted (or found gone)
	fHeld                      // a delete failed: kept this run, with what it refers to
	fNARKept                   // its NAR is in keepNARs
)

// newTable makes a table sized for about n candidates (0: unknown), so
// that it does not grow by doubling (and briefly hold twice its size).
func newTable(n int) *table {
	return &table{hash: make([]cachefmt.Hash, 0, n), gen: make([]int64, 0, n), size: make([]uint32, 0, n),
		flag: make([]uint8, 0, n), late: make([]int32, 0, n), off: append(make([]uint32, 0, n+1), 0),
		refs: make([]uint64, 0, 2*n), lateOff: []uint32{0}}
}

func (t *table) len() int { return len(t.hash) }

// add appends a candidate; refs are the hash parts of its references when
// known. It returns its index (valid until finish).
func (t *table) add(h cachefmt.Hash, info blob.Info, young bool, refs []string, known bool) int32 {
	i := int32(len(t.hash))
	t.hash = append(t.hash, h)
	t.gen = append(t.gen, info.Generation)
	t.size = append(t.size, uint32(min(info.Size, 1<<32-1)))
	var f uint8
	if young {
		f |= fYoung
	}
	if known {
		f |= fKnown
		for _, r := range refs {
			if rh, ok := cachefmt.ParseHash(r); ok && rh != h {
				t.refs = append(t.refs, rh.Prefix())
			}
		}
	}
	t.flag = append(t.flag, f)
	t.late = append(t.late, -1)
	t.off = append(t.off, uint32(len(t.refs)))
	return i
}

// setRefs records i's references, learnt after listing (from the narinfo).
func (t *table) setRefs(i int32, refs []string) {
	for _, r := range refs {
		if rh, ok := cachefmt.ParseHash(r); ok && rh != t.hash[i] {
			t.lateRefs = append(t.lateRefs, rh.Prefix())
		}
	}
	t.late[i] = int32(len(t.lateOff) - 1)
	t.lateOff = append(t.lateOff, uint32(len(t.lateRefs)))
	t.flag[i] |= fKnown
}

// finish orders the candidates by hash for look-ups: an index, the rows
// stay where they are (4 bytes a candidate, nothing copied).
func (t *table) finish() {
	t.byHash = make([]int32, len(t.hash))
	for i := range t.byHash {
		t.byHash[i] = int32(i)
	}
	sort.Slice(t.byHash, func(a, b int) bool { return t.hash[t.byHash[a]].Less(t.hash[t.byHash[b]]) })
}

// find is the candidate with hash h, or -1.
func (t *table) find(h cachefmt.Hash) int32 {
	o := t.byHash
	k := sort.Search(len(o), func(k int) bool { return !t.hash[o[k]].Less(h) })
	if k < len(o) && t.hash[o[k]] == h {
		return o[k]
	}
	return -1
}

// matches calls fn for every candidate whose hash has prefix p.
func (t *table) matches(p uint64, fn func(i int32)) {
	o := t.byHash
	k := sort.Search(len(o), func(k int) bool { return t.hash[o[k]].Prefix() >= p })
	for ; k < len(o) && t.hash[o[k]].Prefix() == p; k++ {
		fn(o[k])
	}
}

// refsOf calls fn for every candidate i refers to (i excluded).
func (t *table) refsOf(i int32, fn func(j int32)) {
	refs := t.refs[t.off[i]:t.off[i+1]]
	if l := t.late[i]; l >= 0 {
		refs = t.lateRefs[t.lateOff[l]:t.lateOff[l+1]]
	}
	for _, p := range refs {
		t.matches(p, func(j int32) {
			if j != i {
				fn(j)
			}
		})
	}
}

// spare keeps each of from that is not deleted, and transitively what it
// refers to; it returns the candidates newly spared.
func (t *table) spare(from []int32) []int32 {
	var out []int32
	stack := append([]int32(nil), from...)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t.flag[i]&(fSpared|fDeleted) != 0 {
			continue
		}
		t.flag[i] |= fSpared
		out = append(out, i)
		t.refsOf(i, func(j int32) { stack = append(stack, j) })
	}
	return out
}

// doomed says whether i is still to be deleted.
func (t *table) doomed(i int32) bool { return t.flag[i]&(fSpared|fDeleted|fHeld) == 0 }

// key is candidate i's object name.
func (t *table) key(i int32) string { return t.hash[i].String() + ".narinfo" }

// waves orders the doomed candidates for deletion: each after every doomed
// candidate that refers to it, as sets deleted together; what sits on a
// reference cycle (which Nix never makes; a planted narinfo might) comes
// last. next must be called with each wave's outcome before asking for
// the next (see order).
type order struct {
	t     *table
	indeg []int32
	wave  []int32
	rest  bool
}

func (t *table) order() *order {
	o := &order{t: t, indeg: make([]int32, t.len())}
	for i := range int32(t.len()) {
		if t.doomed(i) {
			t.refsOf(i, func(j int32) {
				if t.doomed(j) {
					o.indeg[j]++
				}
			})
		}
	}
	for i := range int32(t.len()) {
		if t.doomed(i) && o.indeg[i] == 0 {
			o.wave = append(o.wave, i)
		}
	}
	return o
}

// next returns the next wave (nil when none is left), given that the
// candidates of the last wave are now deleted, held or spared: a
// candidate waits until every doomed one that refers to it is deleted.
func (o *order) next(last []int32) []int32 {
	t := o.t
	var wave []int32
	for _, i := range last {
		if t.flag[i]&fDeleted == 0 {
			continue // held or spared: what it refers to waits (held) or is kept (spared)
		}
		t.refsOf(i, func(j int32) {
			if t.doomed(j) {
				if o.indeg[j]--; o.indeg[j] == 0 {
					wave = append(wave, j)
				}
			}
		})
	}
	if len(wave) > 0 || o.rest {
		return wave
	}
	// Nothing more became free: what is left is on a cycle or below one
	// (or below a held one, which stays held: see hold).
	o.rest = true
	for i := range int32(t.len()) {
		if t.doomed(i) && o.indeg[i] > 0 {
			wave = append(wave, i)
		}
	}
	return wave
}

// first is the first wave.
func (o *order) first() []int32 { return o.wave }

// hold keeps i (whose delete failed) and what it refers to for this run:
// deleting them would leave i referring to missing paths.
func (t *table) hold(i int32) {
	stack := []int32{i}
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t.flag[j]&(fHeld|fDeleted|fSpared) != 0 {
			continue
		}
		t.flag[j] |= fHeld
		t.refsOf(j, func(k int32) { stack = append(stack, k) })
	}
}
