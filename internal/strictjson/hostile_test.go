package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

type hostileInner struct {
	Name string `json:"name"`
}

type hostileDoc struct {
	Type    string                  `json:"payloadType"`
	Payload string                  `json:"payload"`
	List    []hostileInner          `json:"list"`
	Ann     map[string]any          `json:"ann"`
	Raw     json.RawMessage         `json:"raw"`
	Ptr     *hostileInner           `json:"ptr,omitempty"`
	Map     map[string]hostileInner `json:"map"`
	Skip    string                  `json:"-"`
	Strs    map[string]string       `json:"strs"`
}

func TestAccepts(t *testing.T) {
	good := `{"payloadType":"t","payload":"p","list":[{"name":"a"},{"name":"b"}],
		"ann":{"x":{"Y":1,"y2":[{"z":null}]}},"raw":{"anything":{"goes":1}},"ptr":{"name":"c"},
		"map":{"k":{"name":"d"},"K2":{"name":"e"}},"strs":{"a":"b"}}`
	var d hostileDoc
	if err := strictjson.Unmarshal([]byte(good), &d); err != nil {
		t.Fatal(err)
	}
	if d.Payload != "p" || len(d.List) != 2 || d.Ptr.Name != "c" || d.Map["K2"].Name != "e" {
		t.Errorf("decoded %+v", d)
	}
	if err := strictjson.Check([]byte(good)); err != nil {
		t.Error(err)
	}
}

func TestRejects(t *testing.T) {
	for name, tc := range map[string]struct{ hostileDoc, want string }{
		"duplicate key":                 {`{"payload":"a","payload":"b"}`, `"payload" given twice`},
		"case variant":                  {`{"payload":"a","Payload":"b"}`, `differ only in case`},
		"case variant only":             {`{"Payload":"b"}`, `unknown member "Payload"`},
		"unknown field":                 {`{"payload":"a","extra":1}`, `unknown member "extra"`},
		"nested duplicate":              {`{"list":[{"name":"a","name":"b"}]}`, `json /list/0: key "name" given twice`},
		"nested case variant in a map":  {`{"ann":{"x":{"arch":"a","ARCH":"b"}}}`, `json /ann/x: keys "arch" and "ARCH"`},
		"duplicate in a raw message":    {`{"raw":{"a":1,"a":2}}`, `given twice`},
		"unknown field in a map value":  {`{"map":{"k":{"nam":"d"}}}`, `unknown member "nam"`},
		"unknown field behind pointer":  {`{"ptr":{"Name":"c"}}`, `unknown member "Name"`},
		"Kelvin sign folds to k":        {`{"strs":{"k":"a","\u212a":"b"}}`, `differ only in case`},
		"long s folds to s":             {`{"strs":{"s":"a","\u017f":"b"}}`, `differ only in case`},
		"trailing data":                 {`{"payload":"a"} {"payload":"b"}`, `trailing data`},
		"truncated":                     {`{"payload":`, `EOF`},
		"invalid UTF-8":                 {"{\"payload\":\"\xff\"}", `invalid UTF-8`},
		"syntax error":                  {`{"payload":"a",}`, ``},
		"ignored field name is unknown": {`{"Skip":"x"}`, `unknown member "Skip"`},
	} {
		t.Run(name, func(t *testing.T) {
			var d hostileDoc
			err := strictjson.Unmarshal([]byte(tc.hostileDoc), &d)
			var se *strictjson.Error
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Unmarshal = %v, want a *strictjson.Error mentioning %q", err, tc.want)
			}
		})
	}
}

// Objects with many keys (indexed in a map) and objects nested below
// siblings (sharing the per-depth record) are checked the same way.
func TestManyKeysAndSiblings(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"a":{"x":1},"b":{"x":{"deep":{"deeper":1}},"y":2},`)
	for i := range 40 {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(`"z":[{"x":1},{"x":2,"X2":3}]}`)
	good := b.String()
	if err := strictjson.Check([]byte(good)); err != nil {
		t.Fatalf("good: %v", err)
	}
	for name, bad := range map[string]string{
		"repeat among many":              strings.Replace(good, `"k39":39`, `"k39":39,"k7":0`, 1),
		"case variant among many":        strings.Replace(good, `"k39":39`, `"k39":39,"K7":0`, 1),
		"repeat after a sibling":         strings.Replace(good, `"y":2}`, `"y":2,"x":3}`, 1),
		"repeat in second array element": strings.Replace(good, `"X2":3`, `"X2":3,"x":4`, 1),
	} {
		if bad == good {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if err := strictjson.Check([]byte(bad)); err == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDepthIsBounded(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	if err := strictjson.Check([]byte(deep)); err == nil {
		t.Errorf("10000 nested arrays: %v", err)
	}
	ok := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	if err := strictjson.Check([]byte(ok)); err != nil {
		t.Errorf("100 nested objects: %v", err)
	}
}

// Hostile nesting costs time linear in the input and little memory: a
// megabyte of "[" is refused at once, and many subtrees just under the
// depth limit are read in one pass.
func TestHostileNestingIsCheap(t *testing.T) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.TotalAlloc
	start := time.Now()
	if err := strictjson.Check(bytes.Repeat([]byte("["), 1<<20)); err == nil {
		t.Error("1 MiB of [ accepted")
	}
	sub := strings.Repeat("[", 500) + strings.Repeat("]", 500)
	wide := "[" + strings.Repeat(sub+",", 2000) + sub + "]"
	if err := strictjson.Check([]byte(wide)); err != nil {
		t.Errorf("2000 subtrees 500 deep: %v", err)
	}
	deepObj := strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600)
	if err := strictjson.Check([]byte(deepObj)); err == nil {
		t.Error("objects 600 deep accepted")
	}
	runtime.ReadMemStats(&m)
	if el, alloc := time.Since(start), m.TotalAlloc-before; el > 2*time.Second || alloc > 64<<20 {
		t.Errorf("took %s and allocated %d MiB", el, alloc>>20)
	}
}

// FuzzCheck compares Check with a slow reference that walks the tokens
// of encoding/json's decoder: both accept exactly the same documents.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"payload":"a","Payload":"b"}`))
	f.Add([]byte(`{"a":[1,{"b":null}],"c":"d","\u0041":{"a":1,"\u212a":2,"k":3}}`))
	f.Add([]byte(`[{"x":1},{"x":1}] `))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := strictjson.Check(data) == nil
		want, deep := reference(data)
		if deep {
			return
		}
		if got != want {
			t.Fatalf("Check accepts: %v, the reference: %v", got, want)
		}
	})
}

// reference reports whether data is one valid UTF-8 JSON value whose
// objects repeat no key up to case, and whether it nests too deep to say.
func reference(data []byte) (ok, deep bool) {
	if !utf8.Valid(data) || !json.Valid(data) {
		return false, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	type level struct {
		object  bool
		keyNext bool
		seen    map[string]bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return true, false
		}
		top := (*level)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, isDelim := tok.(json.Delim); isDelim {
			switch d {
			case '{', '[':
				if top != nil && top.object {
					top.keyNext = true
				}
				stack = append(stack, &level{object: d == '{', keyNext: true, seen: map[string]bool{}})
				if len(stack) > 500 {
					return false, true
				}
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top == nil || !top.object {
			continue
		}
		if top.keyNext {
			k := strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, tok.(string))
			if top.seen[k] {
				return false, false
			}
			top.seen[k] = true
		}
		top.keyNext = !top.keyNext
	}
}
