package testrig

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemGCS is a lean in-memory stand-in for the parts of Google Cloud
// Storage that the pipeline and Nix use: the JSON API's object uploads
// (multipart and resumable, with generation preconditions), metadata
// reads, listings (prefix, delimiter, startOffset, endOffset, pages of at
// most 1000, the fields a request selects), conditional deletes, batch
// requests (up to 100 calls in one multipart/mixed request), and object
// reads by the XML API path /<bucket>/<object> that both the Go client
// and Nix use. Every object keeps the MD5 and CRC32C the server computed,
// a generation that changes with each write, custom metadata (at most
// 8 KiB, as GCS allows) and its update time from the server's clock
// (SetClock). It holds millions of objects: names are kept in order with
// deletions and additions folded in lazily, so a listing after a write or
// a delete does not sort the bucket again, and Seed stores objects
// without a request.
//
// fake-gcs-server stays the reference emulator; this one exists because
// its in-memory backend scans the whole bucket on every write (its cost
// grows with the bucket), which hides what a pusher costs against a
// remote store. The blob contract suite runs against both.
type MemGCS struct {
	mu      sync.Mutex
	clock   func() time.Time // the server's clock; time.Now when nil
	buckets map[string]*memBucket
	uploads map[string]*memUpload
	gen     int64
}

type memBucket struct {
	objects map[string]*memObject
	// sorted holds names in order, some of them deleted since (dead
	// counts them, at least); added holds names created since, unsorted.
	// A listing merges added in and, when most of sorted is dead,
	// compacts it.
	sorted []string
	added  []string
	dead   int
}

type memObject struct {
	name, contentType, cacheControl string
	data                            []byte
	gen                             int64
	md5                             [16]byte
	crc                             uint32
	meta                            map[string]string
	updated                         time.Time
}

type memUpload struct {
	bucket string
	attrs  objectResource
	ifGen  *int64
	chunks [][]byte
	held   int64
}

// NewMemGCS returns a server holding the given empty buckets.
func NewMemGCS(buckets ...string) *MemGCS {
	m := &MemGCS{buckets: map[string]*memBucket{}, uploads: map[string]*memUpload{}, gen: time.Now().UnixMicro()}
	for _, b := range buckets {
		m.buckets[b] = &memBucket{objects: map[string]*memObject{}}
	}
	return m
}

// SetClock sets the server's clock, which stamps every object written
// (its "updated" time); nil restores time.Now. Tests move it to age
// objects or to put the server's clock off the clients'.
func (m *MemGCS) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock = now
}

// now reads the server's clock; m.mu is held.
func (m *MemGCS) now() time.Time {
	if m.clock != nil {
		return m.clock()
	}
	return time.Now()
}

// Objects returns the number of objects and bytes the server holds.
func (m *MemGCS) Objects() (n int, size int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.buckets {
		for _, o := range b.objects {
			n++
			size += int64(len(o.data))
		}
	}
	return n, size
}

// objectResource is the JSON API's object resource (the fields used).
type objectResource struct {
	Kind           string            `json:"kind,omitempty"`
	ID             string            `json:"id,omitempty"`
	Name           string            `json:"name"`
	Bucket         string            `json:"bucket,omitempty"`
	Generation     string            `json:"generation,omitempty"`
	Metageneration string            `json:"metageneration,omitempty"`
	ContentType    string            `json:"contentType,omitempty"`
	CacheControl   string            `json:"cacheControl,omitempty"`
	Size           string            `json:"size,omitempty"`
	MD5Hash        string            `json:"md5Hash,omitempty"`
	CRC32C         string            `json:"crc32c,omitempty"`
	Etag           string            `json:"etag,omitempty"`
	Updated        string            `json:"updated,omitempty"`
	TimeCreated    string            `json:"timeCreated,omitempty"`
	StorageClass   string            `json:"storageClass,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

func (o *memObject) resource(bucket string) objectResource {
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], o.crc)
	ts := o.updated.UTC().Format(time.RFC3339Nano)
	return objectResource{Kind: "storage#object", ID: fmt.Sprintf("%s/%s/%d", bucket, o.name, o.gen),
		Name: o.name, Bucket: bucket, Generation: strconv.FormatInt(o.gen, 10), Metageneration: "1",
		ContentType: o.contentType, CacheControl: o.cacheControl, Size: strconv.Itoa(len(o.data)),
		MD5Hash: base64.StdEncoding.EncodeToString(o.md5[:]), CRC32C: base64.StdEncoding.EncodeToString(crc[:]),
		Etag: hex.EncodeToString(o.md5[:]), Updated: ts, TimeCreated: ts, StorageClass: "STANDARD", Metadata: o.meta}
}

// apiError is a JSON API error answer.
type apiError struct {
	code   int
	reason string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var (
	errNoObject     = &apiError{http.StatusNotFound, "notFound", "No such object"}
	errNoBucket     = &apiError{http.StatusNotFound, "notFound", "No such bucket"}
	errPrecondition = &apiError{http.StatusPreconditionFailed, "conditionNotMet", "Precondition Failed"}
)

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusBadRequest, "invalid", err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": ae.code, "message": ae.msg,
		"errors": []map[string]string{{"reason": ae.reason, "message": ae.msg}}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP implements http.Handler.
func (m *MemGCS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	var err error
	switch {
	case path == "/batch/storage/v1" && r.Method == http.MethodPost:
		err = m.serveBatch(w, r)
	case strings.HasPrefix(path, "/upload/storage/v1/b/"):
		err = m.serveUpload(w, r, strings.TrimPrefix(path, "/upload/storage/v1/b/"))
	case strings.HasPrefix(path, "/storage/v1/b/"):
		err = m.serveJSON(w, r, strings.TrimPrefix(path, "/storage/v1/b/"))
	default:
		err = m.serveXML(w, r, strings.TrimPrefix(path, "/"))
	}
	if err != nil {
		writeError(w, err)
	}
}

// splitObject splits "<bucket>/o/<escaped object>" (JSON API) into the
// bucket and the object name; the name is "" for the collection.
func splitObject(rest string) (bucket, object string, err error) {
	bucket, tail, _ := strings.Cut(rest, "/")
	tail, ok := strings.CutPrefix(tail, "o")
	if !ok || (tail != "" && !strings.HasPrefix(tail, "/")) {
		return "", "", fmt.Errorf("unsupported path %q", rest)
	}
	object, err = url.PathUnescape(strings.TrimPrefix(tail, "/"))
	return bucket, object, err
}

func (m *MemGCS) serveJSON(w http.ResponseWriter, r *http.Request, rest string) error {
	bucket, object, err := splitObject(rest)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	switch {
	case object == "" && r.Method == http.MethodGet:
		return m.list(w, bucket, q)
	case r.Method == http.MethodGet && q.Get("alt") == "media":
		return m.read(w, r, bucket, object, true)
	case r.Method == http.MethodGet:
		o, err := m.get(bucket, object)
		if err != nil {
			return err
		}
		writeJSON(w, o.resource(bucket))
		return nil
	case r.Method == http.MethodDelete:
		return m.delete(w, bucket, object, q)
	}
	return fmt.Errorf("unsupported %s %s", r.Method, r.URL.Path)
}

// serveXML reads an object by /<bucket>/<object> (GET or HEAD).
func (m *MemGCS) serveXML(w http.ResponseWriter, r *http.Request, rest string) error {
	bucket, escaped, ok := strings.Cut(rest, "/")
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return fmt.Errorf("unsupported %s %s", r.Method, r.URL.Path)
	}
	object, err := url.PathUnescape(escaped)
	if err != nil {
		return err
	}
	return m.read(w, r, bucket, object, false)
}

func (m *MemGCS) get(bucket, object string) (*memObject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.buckets[bucket]
	if !ok {
		return nil, errNoBucket
	}
	o, ok := b.objects[object]
	if !ok {
		return nil, errNoObject
	}
	return o, nil
}

// read serves an object's bytes (whole, or one "bytes=a-b" range) with
// the headers the Go client checks (generation, hashes).
func (m *MemGCS) read(w http.ResponseWriter, r *http.Request, bucket, object string, json bool) error {
	o, err := m.get(bucket, object)
	if err != nil {
		if !json { // the XML API answers 404 without a JSON body
			w.WriteHeader(http.StatusNotFound)
			return nil
		}
		return err
	}
	data, status := o.data, http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		first, last, ok := parseRange(rg, len(o.data))
		if !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(o.data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return nil
		}
		data, status = o.data[first:last+1], http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(o.data)))
	}
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], o.crc)
	h := w.Header()
	h.Set("Content-Type", o.contentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Last-Modified", o.updated.UTC().Format(http.TimeFormat))
	h.Set("ETag", `"`+hex.EncodeToString(o.md5[:])+`"`)
	h.Set("X-Goog-Generation", strconv.FormatInt(o.gen, 10))
	h.Set("X-Goog-Metageneration", "1")
	h.Set("X-Goog-Stored-Content-Encoding", "identity")
	h.Set("X-Goog-Stored-Content-Length", strconv.Itoa(len(o.data)))
	h.Add("X-Goog-Hash", "crc32c="+base64.StdEncoding.EncodeToString(crc[:]))
	h.Add("X-Goog-Hash", "md5="+base64.StdEncoding.EncodeToString(o.md5[:]))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
	return nil
}

// parseRange reads "bytes=a-b", "bytes=a-" or "bytes=-n" for a size.
func parseRange(h string, size int) (first, last int, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	var err error
	switch {
	case a == "":
		n, err := strconv.Atoi(b)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		first, last = max(0, size-n), size-1
	default:
		if first, err = strconv.Atoi(a); err != nil {
			return 0, 0, false
		}
		last = size - 1
		if b != "" {
			if last, err = strconv.Atoi(b); err != nil {
				return 0, 0, false
			}
			last = min(last, size-1)
		}
	}
	return first, last, first <= last && first < size
}

// list answers a listing page: names in order from startOffset (or after
// the pageToken) below endOffset with the prefix, at most maxResults
// (1000) of them, with a delimiter folding deeper names into prefixes.
func (m *MemGCS) list(w http.ResponseWriter, bucket string, q url.Values) error {
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	start, end, token := q.Get("startOffset"), q.Get("endOffset"), q.Get("pageToken")
	limit := 1000
	if n, err := strconv.Atoi(q.Get("maxResults")); err == nil && n > 0 && n < limit {
		limit = n
	}
	m.mu.Lock()
	unlock := sync.OnceFunc(m.mu.Unlock)
	defer unlock()
	b, ok := m.buckets[bucket]
	if !ok {
		return errNoBucket
	}
	names := b.names()
	sel := selection(q.Get("fields"))
	from := max(start, prefix)
	i := sort.SearchStrings(names, from)
	if token != "" {
		i = max(i, sort.Search(len(names), func(j int) bool { return names[j] > token }))
	}
	var items []objectResource
	var prefixes []string
	seen := map[string]bool{}
	last := ""
	for ; i < len(names) && len(items)+len(prefixes) < limit; i++ {
		n := names[i]
		if !strings.HasPrefix(n, prefix) || (end != "" && n >= end) {
			break
		}
		o, live := b.objects[n]
		if !live {
			continue
		}
		last = n
		if delim != "" {
			if j := strings.Index(n[len(prefix):], delim); j >= 0 {
				p := n[:len(prefix)+j+len(delim)]
				if !seen[p] {
					seen[p] = true
					prefixes = append(prefixes, p)
				}
				continue
			}
		}
		items = append(items, sel.apply(o.resource(bucket)))
	}
	for i < len(names) { // the next live name decides whether a page follows
		if _, live := b.objects[names[i]]; live {
			break
		}
		i++
	}
	page := map[string]any{"kind": "storage#objects", "items": items}
	if len(prefixes) > 0 {
		page["prefixes"] = prefixes
	}
	if i < len(names) && strings.HasPrefix(names[i], prefix) && (end == "" || names[i] < end) {
		page["nextPageToken"] = last
	}
	unlock() // the page is built: the (paced) answer does not hold the bucket
	writeJSON(w, page)
	return nil
}

// names returns the names in order, folding in those added since and
// dropping the dead ones when they are most of them; a caller skips
// names no longer in objects.
func (b *memBucket) names() []string {
	if len(b.added) > 0 {
		sort.Strings(b.added)
		merged := make([]string, 0, len(b.sorted)+len(b.added))
		i, j := 0, 0
		for i < len(b.sorted) || j < len(b.added) {
			var n string
			if j == len(b.added) || (i < len(b.sorted) && b.sorted[i] < b.added[j]) {
				n, i = b.sorted[i], i+1
			} else {
				n, j = b.added[j], j+1
			}
			if len(merged) > 0 && merged[len(merged)-1] == n {
				continue // deleted, then created again
			}
			merged = append(merged, n)
		}
		b.sorted, b.added = merged, nil
	}
	if b.dead > 1024 && b.dead > len(b.sorted)/2 {
		live := b.sorted[:0]
		for _, n := range b.sorted {
			if _, ok := b.objects[n]; ok {
				live = append(live, n)
			}
		}
		clear(b.sorted[len(live):])
		b.sorted, b.dead = live, 0
	}
	return b.sorted
}

// store puts o in the bucket; m.mu is held.
func (b *memBucket) store(o *memObject) {
	if _, existed := b.objects[o.name]; !existed {
		b.added = append(b.added, o.name)
	}
	b.objects[o.name] = o
}

func (m *MemGCS) delete(w http.ResponseWriter, bucket, object string, q url.Values) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.buckets[bucket]
	if !ok {
		return errNoBucket
	}
	o, ok := b.objects[object]
	if !ok {
		return errNoObject
	}
	for _, p := range []string{"generation", "ifGenerationMatch"} {
		if v := q.Get(p); v != "" && v != strconv.FormatInt(o.gen, 10) {
			if p == "generation" {
				return errNoObject
			}
			return errPrecondition
		}
	}
	delete(b.objects, object)
	b.dead++
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// serveUpload handles POST (multipart upload, or the start of a resumable
// one) and PUT (a chunk of a resumable upload).
func (m *MemGCS) serveUpload(w http.ResponseWriter, r *http.Request, rest string) error {
	bucket, _, err := splitObject(rest)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	switch {
	case q.Get("upload_id") != "" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		return m.chunk(w, r, q.Get("upload_id"))
	case r.Method != http.MethodPost:
		return fmt.Errorf("unsupported %s %s", r.Method, r.URL.Path)
	case q.Get("uploadType") == "multipart":
		attrs, data, err := readMultipart(r)
		if err != nil {
			return err
		}
		return m.finish(w, bucket, withName(attrs, q), ifGeneration(q), data)
	case q.Get("uploadType") == "resumable":
		return m.startResumable(w, r, bucket, q)
	case q.Get("uploadType") == "media":
		data, err := readBody(r)
		if err != nil {
			return err
		}
		return m.finish(w, bucket, objectResource{Name: q.Get("name"), ContentType: r.Header.Get("Content-Type")}, ifGeneration(q), data)
	}
	return fmt.Errorf("unsupported upload type %q", q.Get("uploadType"))
}

func withName(attrs objectResource, q url.Values) objectResource {
	if n := q.Get("name"); n != "" {
		attrs.Name = n
	}
	return attrs
}

func ifGeneration(q url.Values) *int64 {
	v := q.Get("ifGenerationMatch")
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		n = -1 // matches nothing
	}
	return &n
}

// readMultipart reads a multipart/related upload: the object resource,
// then the media.
func readMultipart(r *http.Request) (objectResource, []byte, error) {
	var attrs objectResource
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return attrs, nil, err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	meta, err := mr.NextPart()
	if err != nil {
		return attrs, nil, err
	}
	if err := json.NewDecoder(meta).Decode(&attrs); err != nil {
		return attrs, nil, err
	}
	media, err := mr.NextPart()
	if err != nil {
		return attrs, nil, err
	}
	if attrs.ContentType == "" {
		attrs.ContentType = media.Header.Get("Content-Type")
	}
	data, err := io.ReadAll(media)
	return attrs, data, err
}

// check tells whether the precondition holds for the current object.
func check(cur *memObject, ifGen *int64) bool {
	switch {
	case ifGen == nil:
		return true
	case *ifGen == 0:
		return cur == nil
	}
	return cur != nil && cur.gen == *ifGen
}

// finish stores an uploaded object if its precondition holds.
func (m *MemGCS) finish(w http.ResponseWriter, bucket string, attrs objectResource, ifGen *int64, data []byte) error {
	if attrs.Name == "" {
		return errors.New("upload names no object")
	}
	if metadataSize(attrs.Metadata) > maxMetadata {
		return &apiError{http.StatusBadRequest, "invalid", "Metadata part is too large."}
	}
	o := newObject(attrs.Name, attrs.ContentType, attrs.CacheControl, data, attrs.Metadata)
	m.mu.Lock()
	b, ok := m.buckets[bucket]
	if !ok {
		m.mu.Unlock()
		return errNoBucket
	}
	if !check(b.objects[attrs.Name], ifGen) {
		m.mu.Unlock()
		return errPrecondition
	}
	m.gen++
	o.gen, o.updated = m.gen, m.now()
	b.store(o)
	m.mu.Unlock()
	writeJSON(w, o.resource(bucket))
	return nil
}

// startResumable opens a resumable upload session; the precondition is
// checked now and again when the upload completes.
func (m *MemGCS) startResumable(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) error {
	var attrs objectResource
	if body, err := io.ReadAll(r.Body); err != nil {
		return err
	} else if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &attrs); err != nil {
			return err
		}
	}
	attrs = withName(attrs, q)
	up := &memUpload{bucket: bucket, attrs: attrs, ifGen: ifGeneration(q)}
	var id [12]byte
	_, _ = rand.Read(id[:])
	sid := hex.EncodeToString(id[:])
	m.mu.Lock()
	b, ok := m.buckets[bucket]
	if ok && !check(b.objects[attrs.Name], up.ifGen) {
		m.mu.Unlock()
		return errPrecondition
	}
	m.uploads[sid] = up
	m.mu.Unlock()
	if !ok {
		return errNoBucket
	}
	loc := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path,
		RawQuery: url.Values{"uploadType": {"resumable"}, "upload_id": {sid}}.Encode()}
	w.Header().Set("Location", loc.String())
	w.WriteHeader(http.StatusOK)
	return nil
}

// chunk appends one chunk ("Content-Range: bytes a-b/total" or
// "bytes a-b/*") to a resumable upload, answering "incomplete" (308, or
// 200 with X-Http-Status-Code-Override: 308 for a client that sent
// X-GUploader-No-308) with the range held until the last one, which
// completes the object.
func (m *MemGCS) chunk(w http.ResponseWriter, r *http.Request, id string) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	first, total, err := contentRange(r.Header.Get("Content-Range"))
	if err != nil {
		return err
	}
	m.mu.Lock()
	up, ok := m.uploads[id]
	if !ok {
		m.mu.Unlock()
		return &apiError{http.StatusNotFound, "notFound", "No such upload"}
	}
	if first >= 0 && first == up.held && len(data) > 0 {
		up.chunks = append(up.chunks, data)
		up.held += int64(len(data))
	}
	held := up.held
	done := total >= 0 && held >= total
	if done {
		delete(m.uploads, id)
	}
	m.mu.Unlock()
	if !done {
		if held > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", held-1))
		}
		if r.Header.Get("X-GUploader-No-308") == "yes" { // the Go client asks for 200 and a header
			w.Header().Set("X-Http-Status-Code-Override", "308")
			w.WriteHeader(http.StatusOK)
			return nil
		}
		w.WriteHeader(http.StatusPermanentRedirect)
		return nil
	}
	return m.finish(w, up.bucket, up.attrs, up.ifGen, bytes.Join(up.chunks, nil))
}

// readBody reads a request body, into one allocation when its length is
// known.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(r.Body)
	}
	b := make([]byte, r.ContentLength)
	_, err := io.ReadFull(r.Body, b)
	return b, err
}

// contentRange parses "bytes a-b/total", "bytes */total" or "bytes a-b/*"
// into the first byte (-1 for "*") and the total (-1 when unknown).
func contentRange(h string) (first, total int64, err error) {
	spec, ok := strings.CutPrefix(h, "bytes ")
	rng, tot, slash := strings.Cut(spec, "/")
	if !ok || !slash {
		return 0, 0, fmt.Errorf("bad Content-Range %q", h)
	}
	first, total = -1, -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bad Content-Range %q", h)
		}
	}
	if rng != "*" {
		a, _, _ := strings.Cut(rng, "-")
		if first, err = strconv.ParseInt(a, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bad Content-Range %q", h)
		}
	}
	return first, total, nil
}

// maxMetadata is the most custom metadata GCS keeps on an object: 8 KiB
// of keys and values.
const maxMetadata = 8 << 10

func metadataSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newObject(name, contentType, cacheControl string, data []byte, meta map[string]string) *memObject {
	return &memObject{name: name, contentType: contentType, cacheControl: cacheControl,
		data: data, md5: md5.Sum(data), crc: crc32.Checksum(data, castagnoli), meta: meta}
}

// SeedObject is an object Seed stores.
type SeedObject struct {
	Name, ContentType string
	Data              []byte
	Metadata          map[string]string
	// Updated is its update time (default: the server's clock now).
	Updated time.Time
}

// Seed stores objects in bucket as uploads would, without a request:
// for benchmarks that start from a cache of millions of objects. It
// returns the generations given, in order.
func (m *MemGCS) Seed(bucket string, objects []SeedObject) ([]int64, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	made := make([]*memObject, len(objects))
	for i, s := range objects {
		if s.Name == "" || metadataSize(s.Metadata) > maxMetadata {
			return nil, fmt.Errorf("seed %q: no name, or more than %d bytes of metadata", s.Name, maxMetadata)
		}
		made[i] = newObject(s.Name, s.ContentType, "", s.Data, s.Metadata)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.buckets[bucket]
	if !ok {
		return nil, errNoBucket
	}
	gens := make([]int64, len(made))
	now := m.now()
	for i, o := range made {
		m.gen++
		o.gen, o.updated = m.gen, now
		if t := objects[i].Updated; !t.IsZero() {
			o.updated = t
		}
		gens[i] = o.gen
		b.store(o)
	}
	return gens, nil
}

// fieldSelection is the object fields a listing's "fields" parameter
// selects (nil: all), as in "nextPageToken,prefixes,items(name,size)".
type fieldSelection map[string]bool

func selection(fields string) fieldSelection {
	i := strings.Index(fields, "items(")
	if i < 0 {
		return nil
	}
	inner, _, ok := strings.Cut(fields[i+len("items("):], ")")
	if !ok {
		return nil
	}
	sel := fieldSelection{}
	for _, f := range strings.Split(inner, ",") {
		sel[strings.TrimSpace(f)] = true
	}
	return sel
}

// apply blanks the fields r does not select (all of them are omitempty).
func (s fieldSelection) apply(r objectResource) objectResource {
	if s == nil {
		return r
	}
	out := objectResource{Name: r.Name}
	for f, dst := range map[string]*string{"kind": &out.Kind, "id": &out.ID, "bucket": &out.Bucket,
		"generation": &out.Generation, "metageneration": &out.Metageneration, "contentType": &out.ContentType,
		"cacheControl": &out.CacheControl, "size": &out.Size, "md5Hash": &out.MD5Hash, "crc32c": &out.CRC32C,
		"etag": &out.Etag, "updated": &out.Updated, "timeCreated": &out.TimeCreated, "storageClass": &out.StorageClass} {
		if s[f] {
			*dst = fieldOf(r, f)
		}
	}
	if s["metadata"] {
		out.Metadata = r.Metadata
	}
	return out
}

func fieldOf(r objectResource, f string) string {
	switch f {
	case "kind":
		return r.Kind
	case "id":
		return r.ID
	case "bucket":
		return r.Bucket
	case "generation":
		return r.Generation
	case "metageneration":
		return r.Metageneration
	case "contentType":
		return r.ContentType
	case "cacheControl":
		return r.CacheControl
	case "size":
		return r.Size
	case "md5Hash":
		return r.MD5Hash
	case "crc32c":
		return r.CRC32C
	case "etag":
		return r.Etag
	case "updated":
		return r.Updated
	case "timeCreated":
		return r.TimeCreated
	case "storageClass":
		return r.StorageClass
	}
	return ""
}

// maxBatch is the most calls GCS takes in one batch request.
const maxBatch = 100

// serveBatch answers a batch request: a multipart/mixed body of up to
// maxBatch HTTP requests (application/http parts), each served as if it
// came alone, answered as a multipart/mixed body of their responses in
// order, each part's Content-ID "response-" and the request's.
func (m *MemGCS) serveBatch(w http.ResponseWriter, r *http.Request) error {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var parts []*http.Request
	var ids []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(parts) == maxBatch {
			return fmt.Errorf("a batch holds at most %d calls", maxBatch)
		}
		req, err := http.ReadRequest(bufio.NewReader(p))
		if err != nil {
			return fmt.Errorf("batch part: %w", err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		parts = append(parts, req)
		ids = append(ids, strings.Trim(p.Header.Get("Content-ID"), "<>"))
	}
	var out bytes.Buffer
	mw := multipart.NewWriter(&out)
	for i, req := range parts {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/http")
		h.Set("Content-ID", "<response-"+ids[i]+">")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		res := rec.Result()
		fmt.Fprintf(pw, "HTTP/1.1 %d %s\r\n", res.StatusCode, http.StatusText(res.StatusCode))
		res.Header.Set("Content-Length", strconv.Itoa(rec.Body.Len()))
		if err := res.Header.Write(pw); err != nil {
			return err
		}
		fmt.Fprint(pw, "\r\n")
		pw.Write(rec.Body.Bytes())
	}
	if err := mw.Close(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	_, err = w.Write(out.Bytes())
	return err
}
