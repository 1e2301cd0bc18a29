package cachefmt

import "encoding/binary"

// Hash is the hash part of a store path packed into 20 bytes (32 nix32
// characters of 5 bits each): what GC and audit hold per path, instead of
// a string, to keep millions of them in a few tens of MiB.
type Hash [20]byte

// nix32Value is the 5-bit value of each nix32 character, -1 for others.
var nix32Value = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := range len(Nix32Alphabet) {
		v[Nix32Alphabet[i]] = int8(i)
	}
	return v
}()

// ParseHash packs a hash part; false if h is not one.
func ParseHash(h string) (Hash, bool) {
	var out Hash
	if len(h) != 32 {
		return out, false
	}
	var acc uint64
	bits, o := 0, 0
	for i := range 32 {
		v := nix32Value[h[i]]
		if v < 0 {
			return Hash{}, false
		}
		acc = acc<<5 | uint64(v)
		if bits += 5; bits >= 8 {
			bits -= 8
			out[o] = byte(acc >> bits)
			o++
		}
	}
	return out, true
}

// String is the hash part h packs.
func (h Hash) String() string {
	var b [32]byte
	var acc uint64
	bits, o := 0, 0
	for _, x := range h {
		acc = acc<<8 | uint64(x)
		for bits += 8; bits >= 5; o++ {
			bits -= 5
			b[o] = Nix32Alphabet[(acc>>bits)&31]
		}
	}
	return string(b[:])
}

// Prefix is the first 8 bytes of h: a key that tells millions of hashes
// apart but for a chance of about one in 10^7 (callers that need exact
// answers check the whole hash).
func (h Hash) Prefix() uint64 { return binary.BigEndian.Uint64(h[:8]) }

// Less orders hashes (as their strings order).
func (h Hash) Less(o Hash) bool {
	for i := range h {
		if h[i] != o[i] {
			return h[i] < o[i]
		}
	}
	return false
}
