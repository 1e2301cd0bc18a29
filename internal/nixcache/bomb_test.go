package nixcache_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/nixhash"
	"github.com/ulikunitz/xz"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// bombSize is what each decompression bomb expands to.
const bombSize = 8 << 30

// zstdBomb is a zstd frame of total zero bytes made of RLE blocks (4 bytes
// for each 128 KiB). It declares a window of 2^windowLog bytes or, if
// singleSegment, is a single-segment frame declaring total as its content
// size, whose window is then the whole content.
func zstdBomb(total int64, windowLog uint, singleSegment bool) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x28, 0xb5, 0x2f, 0xfd})
	if singleSegment {
		b.WriteByte(0xe0) // 8-byte content size, single segment
		_ = binary.Write(&b, binary.LittleEndian, uint64(total))
	} else {
		b.WriteByte(0x00)
		b.WriteByte(byte((windowLog - 10) << 3))
	}
	const block = 128 << 10
	for left := total; left > 0; left -= block {
		h := uint32(min(left, block))<<3 | 1<<1 // RLE block
		if left <= block {
			h |= 1 // last
		}
		b.Write([]byte{byte(h), byte(h >> 8), byte(h >> 16), 0})
	}
	return b.Bytes()
}

// xzBomb is total zero bytes as concatenated xz streams of 16 MiB each
// (the format allows any number of streams in one file).
func xzBomb(t testing.TB, total int64) []byte {
	t.Helper()
	const chunk = 16 << 20
	var one bytes.Buffer
	w, err := xz.NewWriter(&one)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, chunk)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(one.Bytes(), int(total/chunk))
}

// xzWithDict rewrites the dictionary size that the first block header of
// stream declares (an LZMA2 dictionary size code: 40 is 4 GiB) and fixes
// the header's CRC32.
func xzWithDict(t testing.TB, stream []byte, code byte) []byte {
	t.Helper()
	out := bytes.Clone(stream)
	h := out[12:]
	size := (int(h[0]) + 1) * 4
	if h[1] != 0 || h[2] != 0x21 || h[3] != 1 { // one filter, no sizes: LZMA2, 1 byte of properties
		t.Fatalf("unexpected xz block header % x", h[:size])
	}
	h[4] = code
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return out
}

// recordingStore counts the bytes read from every object opened.
type recordingStore struct {
	blob.Store
	mu   sync.Mutex
	read map[string]int64
}

func (r *recordingStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := r.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	r.add(key, 0)
	return &countingReadCloser{rc: rc, add: func(n int) { r.add(key, int64(n)) }}, nil
}

func (r *recordingStore) add(key string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read[key] += n
}

func (r *recordingStore) bytesRead(key string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.read[key]
	return n, ok
}

type countingReadCloser struct {
	rc  io.ReadCloser
	add func(int)
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.add(n)
	return n, err
}

func (c *countingReadCloser) Close() error { return c.rc.Close() }

// bomb is one decompression bomb planted behind a path's narinfo.
type bomb struct {
	name, key, compression string
	body                   []byte
	signed                 bool   // the narinfo keeps its valid signature
	want                   string // in the problem reported for the path
}

func bombs(t *testing.T) []bomb {
	xzb := xzBomb(t, bombSize)
	return []bomb{
		{"zstd RLE blocks, 8 MiB window", "nar/bomb-rle.nar.zst", "zstd", zstdBomb(bombSize, 23, false), true, "past its NarSize"},
		{"zstd single segment declaring 8 GiB", "nar/bomb-fcs.nar.zst", "zstd", zstdBomb(bombSize, 0, true), true, "window"},
		{"xz streams", "nar/bomb.nar.xz", "xz", xzb, true, "past its NarSize"},
		{"xz declaring a 4 GiB dictionary", "nar/bomb-dict.nar.xz", "xz", xzWithDict(t, xzb, 40), true, "dictionary"},
		{"zstd behind an unsigned narinfo", "nar/bomb-unsigned.nar.zst", "zstd", zstdBomb(bombSize, 23, false), false, "no signature verifies"},
	}
}

// plantBombs points the narinfos of len(bombs) closure paths at the bombs,
// as an attacker with write access to the cache can: URL, Compression,
// FileHash and FileSize are not covered by the signature, which keeps
// verifying unless the bomb says otherwise.
func plantBombs(t *testing.T, s blob.Store, bs []bomb, v []nixstore.PathInfo) {
	t.Helper()
	for i, b := range bs {
		plant(t, s, b.key, b.body)
		ni := storedNarinfo(t, s, v[i].Path)
		pointAt(ni, b.key, b.body)
		ni.Compression = b.compression
		if !b.signed {
			ni.Signatures = nil
		}
		plant(t, s, nixstore.HashPart(v[i].Path)+".narinfo", []byte(ni.String()))
	}
}

// cache:verifyDeep over decompression bombs of 8 GiB each (a few hundred
// KiB to 1.3 MiB compressed) reports each one without expanding it: it does
// not download a NAR whose narinfo does not verify, stops decompressing one
// byte past NarSize, refuses windows and dictionaries beyond its limit, and
// stays under 64 MiB of peak RSS (measured with GNU time on a child
// process).
func TestVerifyDeepBombs(t *testing.T) {
	isolateNix(t)
	timeBin := testrig.RequireTool(t, "time")
	_, netboot := fixture(t)
	infos := closureInfos(t, netboot)
	k := newKey(t, "bomb-1")
	o := dirOptions(filepath.Join(t.TempDir(), "cache"), k)
	if _, err := nixcache.Push(tctx(t), o, []string{netboot}); err != nil {
		t.Fatal(err)
	}
	s, err := blob.OpenDir(o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	bs := bombs(t)
	v := victims(t, infos, len(bs))
	plantBombs(t, s, bs, v)

	rec := &recordingStore{Store: s, read: map[string]int64{}}
	ro := o
	ro.Store = rec
	rep, err := nixcache.Verify(tctx(t), ro, true)
	var ve *nixcache.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("verify of a cache full of bombs: %v", err)
	}
	for i, b := range bs {
		key := nixstore.HashPart(v[i].Path) + ".narinfo"
		if !hasProblem(rep, key, b.want) {
			t.Errorf("%s: no problem on %s mentioning %q; problems:\n%v", b.name, key, b.want, rep.Problems)
		}
		n, opened := rec.bytesRead(b.key)
		switch {
		case !b.signed && opened:
			t.Errorf("%s: the NAR of a narinfo that does not verify was downloaded", b.name)
		case n > 1<<20:
			t.Errorf("%s: read %d compressed bytes to check a NAR of %d bytes", b.name, n, v[i].NarSize)
		}
	}

	rss, secs := verifyUnderGNUTime(t, timeBin, childSpec{Dir: o.Dir, Verify: true, Deep: true, PubKey: k.public}, len(bs))
	t.Logf("cache:verifyDeep over %d bombs of %d GiB each: peak RSS %d KiB, %.2f s (GNU time)", len(bs), bombSize>>30, rss, secs)
	if rss > 64<<10 {
		t.Errorf("verifyDeep peaked at %d KiB, want under 64 MiB", rss)
	}
	if secs > 30 {
		t.Errorf("verifyDeep took %.1f s over the bombs", secs)
	}
}

func hasProblem(rep nixcache.Report, key, want string) bool {
	for _, p := range rep.Problems {
		if p.Key == key && strings.Contains(p.Message, want) {
			return true
		}
	}
	return false
}

// verifyUnderGNUTime runs the audit of spec in a child process under GNU
// time (killed after a minute) and returns its peak RSS in KiB and its wall
// time; the child must report problems (exit 1) on at least want narinfos.
func verifyUnderGNUTime(t *testing.T, timeBin string, spec childSpec, want int) (rssKiB int64, secs float64) {
	t.Helper()
	figures := filepath.Join(t.TempDir(), "time")
	cmd := childPush(t, spec)
	cmd.Args = append([]string{timeBin, "-f", "%M KiB %e s", "-o", figures}, cmd.Args...)
	cmd.Path = timeBin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killer := time.AfterFunc(time.Minute, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	killer.Stop()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("child verify: %v (want exit 1: problems found)\n%s", err, out.String())
	}
	if rep := childReport(t, out.String()); len(rep.Problems) < want {
		t.Fatalf("child verify reported %d problems, want at least %d:\n%v", len(rep.Problems), want, rep.Problems)
	}
	raw, err := os.ReadFile(figures)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n") // "Command exited with non-zero status 1" comes first
	var kib int64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%d KiB %f s", &kib, &secs); err != nil {
		t.Fatalf("GNU time wrote %q: %v", raw, err)
	}
	return kib, secs
}

func childReport(t *testing.T, out string) nixcache.Report {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "REPORT "); ok {
			var rep nixcache.Report
			if err := json.Unmarshal([]byte(line), &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
	}
	t.Fatalf("no report in the child's output:\n%s", out)
	return nixcache.Report{}
}

// pointAt points a narinfo at the object key holding body, as an attacker
// with write access to the cache can: URL, FileHash and FileSize are not
// covered by the signature.
func pointAt(ni *narinfo.NarInfo, key string, body []byte) {
	h := sha256.Sum256(body)
	ni.URL, ni.FileSize = key, uint64(len(body))
	ni.FileHash = nixhash.MustNewHashWithEncoding(nixhash.SHA256, h[:], nixhash.NixBase32, true)
}
