package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"sync"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
)

// fp is a 16-byte fingerprint: SHA-256 of a secret salt and the fields
// fingerprinted, truncated. Membership of a fingerprint stands for the
// fields themselves: with a salt drawn for each run, nobody can aim at a
// collision, and an accidental one among millions has a chance of about
// 10^-26.
type fp [16]byte

// narSet holds what the listing showed of each NAR, as fingerprints: its
// name, its name and size, its name, size and MD5 (about 48 bytes a NAR).
type narSet struct {
	salt                [16]byte
	mu                  sync.Mutex
	named, sized, exact []fp
}

func newNARSet() *narSet {
	s := &narSet{}
	_, _ = rand.Read(s.salt[:]) // crypto/rand does not fail
	return s
}

func (s *narSet) print(key string, size int64, md5 []byte, what byte) fp {
	h := sha256.New()
	h.Write(s.salt[:])
	h.Write([]byte{what})
	h.Write([]byte(key))
	h.Write([]byte{0})
	if what != 'n' {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(size))
		h.Write(b[:])
	}
	if what == 'x' {
		h.Write(md5)
	}
	var out fp
	copy(out[:], h.Sum(nil))
	return out
}

// add records a listed NAR (safe for concurrent use; call sort after).
func (s *narSet) add(i blob.Info) {
	n, z := s.print(i.Key, 0, nil, 'n'), s.print(i.Key, i.Size, nil, 's')
	var x fp
	if len(i.MD5) == 16 {
		x = s.print(i.Key, i.Size, i.MD5, 'x')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.named = append(s.named, n)
	s.sized = append(s.sized, z)
	if len(i.MD5) == 16 {
		s.exact = append(s.exact, x)
	}
}

func sortFPs(a []fp) {
	sort.Slice(a, func(i, j int) bool { return bytes.Compare(a[i][:], a[j][:]) < 0 })
}

func hasFP(a []fp, x fp) bool {
	i := sort.Search(len(a), func(i int) bool { return bytes.Compare(a[i][:], x[:]) >= 0 })
	return i < len(a) && a[i] == x
}

func (s *narSet) sort() { sortFPs(s.named); sortFPs(s.sized); sortFPs(s.exact) }

// has says whether a NAR was listed under key.
func (s *narSet) has(key string) bool { return hasFP(s.named, s.print(key, 0, nil, 'n')) }

// hasSized says whether a NAR of size was listed under key.
func (s *narSet) hasSized(key string, size int64) bool {
	return hasFP(s.sized, s.print(key, size, nil, 's'))
}

// matches says whether the NAR nar names was listed with its size and MD5.
func (s *narSet) matches(nar cachefmt.NarRef) bool {
	return len(nar.MD5) == 16 && hasFP(s.exact, s.print(nar.Key, nar.Size, nar.MD5, 'x'))
}

// refCheck is a reference to check once every narinfo is listed: the
// packed hash it names and the narinfo that refers to it.
type refCheck struct {
	ref, owner cachefmt.Hash
}

// nameSet is the narinfos listed, packed (20 bytes each), less those
// found deleted when read (gone).
type nameSet struct {
	mu     sync.Mutex
	hashes []cachefmt.Hash
	gone   map[cachefmt.Hash]struct{}
}

// drop removes h: listed, but deleted before it could be read (a name
// that resolves references must be of a narinfo that was checked).
func (s *nameSet) drop(h cachefmt.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone == nil {
		s.gone = map[cachefmt.Hash]struct{}{}
	}
	s.gone[h] = struct{}{}
}

func (s *nameSet) add(h cachefmt.Hash) {
	s.mu.Lock()
	s.hashes = append(s.hashes, h)
	s.mu.Unlock()
}

func (s *nameSet) sort() {
	sort.Slice(s.hashes, func(i, j int) bool { return s.hashes[i].Less(s.hashes[j]) })
}

func (s *nameSet) has(h cachefmt.Hash) bool {
	if _, gone := s.gone[h]; gone {
		return false
	}
	i := sort.Search(len(s.hashes), func(i int) bool { return !s.hashes[i].Less(h) })
	return i < len(s.hashes) && s.hashes[i] == h
}
