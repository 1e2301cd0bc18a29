// Package strictjson reads JSON that must mean the same thing to every
// parser that reads it: documents we sign or verify (a DSSE envelope, a
// statement, an SBOM) and documents an untrusted party writes.
// encoding/json keeps the last of two equal keys, matches field names
// without regard to case and ignores unknown members; another parser may
// keep the first key or the exactly-cased one, and so read a different
// document than the one we checked. This package refuses all of that: a
// key given twice or in two cases ("payload" and "Payload", folded the way
// encoding/json folds them) in any object at any depth, invalid UTF-8,
// data after the document and, when decoding into a type, a member name
// that is not exactly one of its fields.
//
// It is made for hostile input: the document is checked by json.Valid
// (which bounds nesting), then walked in one pass over the bytes, in time
// linear in its size and memory proportional to its key count.
//
// Why not encoding/json/v2: its options hold most of these rules
// (duplicate names and invalid UTF-8 refused by default, names matched
// case-sensitively, unknown members refused with RejectUnknownMembers,
// trailing data refused), and v2_test.go checks, on the rules' documents,
// the fuzz corpus and our own documents, that v2 with those options
// refuses everything this package refuses except two things: two keys
// that differ only in case inside members that take any names (maps, raw
// and interface values, and Check's untyped documents), and nesting
// deeper than 512. In Go 1.26, the toolchain the project builds with,
// though, v2 is built only with GOEXPERIMENT=jsonv2, which go.mod cannot
// set: every build of the project (go run magefile.go, the build VM's
// binary, CI) would have to set it. Go 1.27 makes v2 part of the default
// build, so this package keeps its own rules until the project moves to
// Go 1.27; then Unmarshal becomes v2 with RejectUnknownMembers plus
// the one-pass walk for case variants and depth (which finds duplicates
// in the same pass), and the struct field check here goes. Speed does
// not decide it: on our documents, a few KiB each, either takes tens of
// microseconds (docs/benchmarks.md).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Error locates what was refused with a JSON pointer to the object or
// array that holds it, and says what it was.
type Error struct {
	Pointer string
	Msg     string
	Reason  Reason
	// Key is the member name refused, for Duplicate, CaseVariant and
	// Unknown.
	Key string
}

// Reason is the kind of thing refused.
type Reason int

// The reasons of an Error.
const (
	Syntax      Reason = iota // not JSON, or not of the type decoded into
	Trailing                  // data after the document
	Duplicate                 // a key given twice
	CaseVariant               // two keys that differ only in case
	Unknown                   // a member name that is not exactly a field's
	TooDeep                   // nesting beyond the limit
)

func (e *Error) Error() string {
	if e.Pointer == "" {
		return "json: " + e.Msg
	}
	return fmt.Sprintf("json %s: %s", e.Pointer, e.Msg)
}

// maxDepth bounds the nesting of arrays and objects (json.Valid allows
// 10000).
const maxDepth = 512

// Check reads one JSON value and refuses invalid UTF-8, data after the
// value, and objects whose keys repeat exactly or up to case.
func Check(data []byte) error {
	return walk(data, nil)
}

// Unmarshal is Check, then a check that every object decoded into a
// struct uses only the struct's JSON member names, spelled exactly, then
// json.Unmarshal into v (a non-nil pointer). Members decoded into
// json.RawMessage, interface values or types with their own UnmarshalJSON
// accept any names (the duplicate and case checks still apply).
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Unmarshal needs a non-nil pointer")
	}
	if err := walk(data, rv.Type().Elem()); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "json: ")}
	}
	return nil
}

// walk checks data, matching objects against t when t is not nil.
func walk(data []byte, t reflect.Type) error {
	if !utf8.Valid(data) {
		return &Error{Msg: "invalid UTF-8"}
	}
	if !json.Valid(data) {
		return syntaxError(data)
	}
	s := &scanner{data: data}
	return s.value(t, 0)
}

// syntaxError says why json.Valid refused data.
func syntaxError(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "json: ")}
	}
	return &Error{Msg: "trailing data after the document", Reason: Trailing}
}

// scanner walks a document json.Valid accepted, so it need not check the
// syntax again: it looks at object keys only, allocating little (a string
// per key only in objects with many keys).
type scanner struct {
	data []byte
	pos  int
	// path leads to the current value, for error messages.
	path []step
	// frames holds, per depth, the keys of the object being read there
	// (pointers: a deeper object may grow the slice).
	frames []*frame
}

// step is an array index or an object key (its span in data, quotes
// excluded).
type step struct {
	index      int
	start, end int
	key        bool
}

// frame is the keys of one object so far: folded, back to back in
// folded, with their spans; index takes over when there are many.
type frame struct {
	folded []byte
	keys   []keySpan
	index  map[string]int
}

type keySpan struct{ fstart, fend, start, end int }

// manyKeys is the key count from which a frame indexes its keys in a map.
const manyKeys = 16

func (s *scanner) value(t reflect.Type, depth int) error {
	s.space()
	switch s.data[s.pos] {
	case '{', '[':
		if depth >= maxDepth {
			return s.refuse(TooDeep, "", "nested deeper than %d", maxDepth)
		}
		if s.data[s.pos] == '[' {
			return s.array(elemOf(t), depth+1)
		}
		return s.object(t, depth+1)
	case '"':
		s.skipString()
	default:
		s.skipScalar()
	}
	return nil
}

func (s *scanner) array(elem reflect.Type, depth int) error {
	s.pos++ // '['
	for i := 0; ; i++ {
		s.space()
		switch s.data[s.pos] {
		case ']':
			s.pos++
			return nil
		case ',':
			s.pos++
		}
		s.path = append(s.path, step{index: i})
		if err := s.value(elem, depth); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
	}
}

func (s *scanner) object(t reflect.Type, depth int) error {
	fields, structured := fieldsOf(t)
	f := s.frame(depth)
	s.pos++ // '{'
	for {
		s.space()
		switch s.data[s.pos] {
		case '}':
			s.pos++
			return nil
		case ',':
			s.pos++
			s.space()
		}
		start := s.pos + 1
		s.skipString()
		end := s.pos - 1
		key := s.key(start, end)
		if err := s.addKey(f, key, start, end); err != nil {
			return err
		}
		next := elemOf(t)
		if structured {
			ft, ok := fields[string(key)]
			if !ok {
				return s.refuse(Unknown, string(key), "unknown member %q (names are case-sensitive)", key)
			}
			next = ft
		}
		s.space()
		s.pos++ // ':'
		s.path = append(s.path, step{start: start, end: end, key: true})
		if err := s.value(next, depth); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
	}
}

// frame returns the emptied key record for an object at depth.
func (s *scanner) frame(depth int) *frame {
	for len(s.frames) <= depth {
		s.frames = append(s.frames, &frame{})
	}
	f := s.frames[depth]
	f.folded, f.keys, f.index = f.folded[:0], f.keys[:0], nil
	return f
}

// addKey records key, refusing a repeat or a case variant of an earlier
// key of the same object.
func (s *scanner) addKey(f *frame, key []byte, start, end int) error {
	fstart := len(f.folded)
	f.folded = appendFolded(f.folded, key)
	folded := f.folded[fstart:]
	prev := -1
	if f.index != nil {
		if i, ok := f.index[string(folded)]; ok {
			prev = i
		}
	} else {
		for i, k := range f.keys {
			if bytes.Equal(f.folded[k.fstart:k.fend], folded) {
				prev = i
				break
			}
		}
	}
	if prev >= 0 {
		p := f.keys[prev]
		if earlier := s.key(p.start, p.end); !bytes.Equal(earlier, key) {
			return s.refuse(CaseVariant, string(key), "keys %q and %q differ only in case", earlier, key)
		}
		return s.refuse(Duplicate, string(key), "key %q given twice", key)
	}
	f.keys = append(f.keys, keySpan{fstart: fstart, fend: len(f.folded), start: start, end: end})
	switch {
	case f.index != nil:
		f.index[string(folded)] = len(f.keys) - 1
	case len(f.keys) == manyKeys:
		f.index = make(map[string]int, 2*manyKeys)
		for i, k := range f.keys {
			f.index[string(f.folded[k.fstart:k.fend])] = i
		}
	}
	return nil
}

// key returns the decoded key whose quoted form spans data[start-1:end+1].
func (s *scanner) key(start, end int) []byte {
	raw := s.data[start:end]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var k string
	_ = json.Unmarshal(s.data[start-1:end+1], &k) // cannot fail: json.Valid passed
	return []byte(k)
}

// appendFolded appends key folded the way encoding/json compares field
// names: each rune to upper(lower(rune)), so "k", "K" and the Kelvin sign
// fold alike.
func appendFolded(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		dst = utf8.AppendRune(dst, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return dst
}

func (s *scanner) skipString() {
	s.pos++ // opening quote
	for {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
		case '"':
			s.pos++
			return
		default:
			s.pos++
		}
	}
}

// skipScalar skips a number, true, false or null.
func (s *scanner) skipScalar() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',', ']', '}', ' ', '\t', '\r', '\n':
			return
		}
		s.pos++
	}
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// refuse is an *Error located at the object or array being read.
func (s *scanner) refuse(reason Reason, key, format string, args ...any) error {
	var b strings.Builder
	for _, st := range s.path {
		b.WriteByte('/')
		if st.key {
			b.WriteString(escape(string(s.key(st.start, st.end))))
		} else {
			fmt.Fprint(&b, st.index)
		}
	}
	return &Error{Pointer: b.String(), Msg: fmt.Sprintf(format, args...), Reason: reason, Key: key}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// fieldsOf returns the JSON names of t's fields when t (or what it points
// to) is a struct decoded field by field.
func fieldsOf(t reflect.Type) (map[string]reflect.Type, bool) {
	t = deref(t)
	if t == nil || t.Kind() != reflect.Struct || custom(t) {
		return nil, false
	}
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type), true
	}
	fields := map[string]reflect.Type{}
	addFields(t, fields)
	fieldCache.Store(t, fields)
	return fields, true
}

// fieldCache maps struct types to their member names.
var fieldCache sync.Map

// addFields adds t's JSON member names; those of an embedded struct are
// promoted unless a field of t already has the name.
func addFields(t reflect.Type, fields map[string]reflect.Type) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && name == "" && deref(f.Type).Kind() == reflect.Struct:
			embedded = append(embedded, deref(f.Type))
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	for _, e := range embedded {
		promoted := map[string]reflect.Type{}
		addFields(e, promoted)
		for k, v := range promoted {
			if _, ok := fields[k]; !ok {
				fields[k] = v
			}
		}
	}
}

// elemOf is the type of t's elements (slice, array, map values), or nil
// when anything goes.
func elemOf(t reflect.Type) reflect.Type {
	t = deref(t)
	if t == nil || custom(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return t.Elem()
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// custom reports whether t decodes itself.
func custom(t reflect.Type) bool {
	return t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
}

// escaper makes a key a JSON pointer token (RFC 6901).
var escaper = strings.NewReplacer("~", "~0", "/", "~1")

func escape(key string) string { return escaper.Replace(key) }
