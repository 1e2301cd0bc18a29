package nixcache_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// seedGarbage fills bucket/prefix of the GCS stand-in with expired
// garbage as pushes leave it: closures of 2,000 paths (40 levels of 50,
// each path referring to two of the level below, the lowest level to two
// paths of live), each path a narinfo signed by k with its version 2 push
// proof and a zstd NAR (a real NAR of one small file), each closure with
// a root of name "live" older than any other, stored at store time at.
// It stores about objects objects (4,001 a closure) and returns how many.
func seedGarbage(tb testing.TB, link *testrig.Link, bucket, prefix string, k keyPair, objects int, live []string, at time.Time) int {
	tb.Helper()
	sk, err := signature.LoadSecretKey(k.secret)
	if err != nil {
		tb.Fatal(err)
	}
	const width, depth = 50, 40
	closures := max(1, objects/(2*width*depth+1))
	var next sync.Mutex
	c := 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	var seedErr error
	for w := range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w)+1, uint64(objects)))
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
			for {
				next.Lock()
				i := c
				c++
				next.Unlock()
				if i >= closures {
					return
				}
				objs, err := seedClosure(r, enc, sk, prefix, i, width, depth, live, at.Add(-time.Duration(i)*time.Minute))
				if err == nil {
					_, err = link.GCS.Seed(bucket, objs)
				}
				mu.Lock()
				stored += len(objs)
				if err != nil && seedErr == nil {
					seedErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if seedErr != nil {
		tb.Fatal(seedErr)
	}
	return stored
}

// seedClosure makes the objects of garbage closure i.
func seedClosure(r *rand.Rand, enc *zstd.Encoder, sk signature.SecretKey, prefix string, i, width, depth int, live []string, at time.Time) ([]testrig.SeedObject, error) {
	var objs []testrig.SeedObject
	var below, hashes []string
	for lvl := range depth {
		var level []string
		for j := range width {
			hash := randomHashPart(r)
			p := fmt.Sprintf("/nix/store/%s-seed-%d-%d-%d", hash, i, lvl, j)
			var refs []string
			switch {
			case lvl > 0:
				refs = []string{below[j], below[(j+1)%width]}
			case len(live) > 1:
				refs = []string{live[r.IntN(len(live))], live[r.IntN(len(live))]}
			}
			o, err := seedPath(enc, sk, prefix, p, refs, fmt.Sprintf("seed %d %d %d\n", i, lvl, j), at)
			if err != nil {
				return nil, err
			}
			objs = append(objs, o...)
			level = append(level, p)
			hashes = append(hashes, hash)
		}
		below = level
	}
	sort.Strings(hashes)
	root := &cachefmt.Root{Version: cachefmt.RootVersion, Name: "live", BuildID: fmt.Sprintf("seed-%d", i),
		Time: at.UTC().Truncate(time.Second), Paths: below[:1], Closure: hashes}
	if err := root.Sign(sk); err != nil {
		return nil, err
	}
	body, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	return append(objs, testrig.SeedObject{Name: prefix + "/" + root.Key(), ContentType: "application/json", Data: body, Updated: at}), nil
}

func randomHashPart(r *rand.Rand) string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = cachefmt.Nix32Alphabet[r.IntN(len(cachefmt.Nix32Alphabet))]
	}
	return string(b)
}

// seedPath makes the narinfo (with its proof) and NAR objects of store
// path p, a regular file holding contents, referring to refs.
func seedPath(enc *zstd.Encoder, sk signature.SecretKey, prefix, p string, refs []string, contents string, at time.Time) ([]testrig.SeedObject, error) {
	nar := narOfFile(contents)
	narHash := sha256.Sum256(nar)
	file := enc.EncodeAll(nar, nil)
	fileHash := sha256.Sum256(file)
	fileMD5 := md5.Sum(file)
	pi := nixstore.PathInfo{Path: p, NarHash: "sha256:" + nixhash.MustNewHashWithEncoding(nixhash.SHA256, narHash[:], nixhash.NixBase32, false).String(),
		NarSize: uint64(len(nar)), References: refs}
	codec, _ := cachefmt.CodecFor("zstd")
	narKey, err := cachefmt.NarKey(pi.NarHash, codec)
	if err != nil {
		return nil, err
	}
	ni, err := cachefmt.BuildNarInfo(pi, "zstd", cachefmt.NarFile{URL: narKey, FileHash: fileHash[:], FileSize: uint64(len(file))}, sk)
	if err != nil {
		return nil, err
	}
	body := []byte(ni.String())
	key := cachefmt.NarinfoKey(p)
	var refHashes []string
	for _, r := range refs {
		refHashes = append(refHashes, nixstore.HashPart(r))
	}
	meta, err := cachefmt.MakeProof(sk, key, body, cachefmt.NarRef{Key: narKey, Size: int64(len(file)), MD5: fileMD5[:]}, refHashes)
	if err != nil {
		return nil, err
	}
	return []testrig.SeedObject{
		{Name: prefix + "/" + key, ContentType: cachefmt.NarinfoType, Data: body, Metadata: meta, Updated: at},
		{Name: prefix + "/" + narKey, ContentType: cachefmt.NarType, Data: file, Updated: at},
	}, nil
}

// narOfFile is the NAR of a regular file holding contents.
func narOfFile(contents string) []byte {
	var b bytes.Buffer
	str := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
		b.Write(make([]byte, (8-len(s)%8)%8))
	}
	for _, s := range []string{"nix-archive-1", "(", "type", "regular", "contents", contents, ")"} {
		str(s)
	}
	return b.Bytes()
}

// seedStats records objects as the count a previous GC left in gc/stats.
func seedStats(tb testing.TB, store blob.Store, objects int) {
	tb.Helper()
	if err := lease.WriteStats(tctx(tb), store, lease.Stats{Objects: int64(objects)}); err != nil {
		tb.Fatal(err)
	}
}
