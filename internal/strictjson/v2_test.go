//go:build goexperiment.jsonv2

// The comparison with the standard library's JSON v2, which Go 1.26 builds
// only with GOEXPERIMENT=jsonv2:
//
//	GOEXPERIMENT=jsonv2 go test -run V2 ./internal/strictjson
//	GOEXPERIMENT=jsonv2 go test -run '^$' -bench V2 ./internal/strictjson
//	GOEXPERIMENT=jsonv2 go test -run '^$' -fuzz FuzzAgreesWithV2 ./internal/strictjson
//
// It states which of our rules v2's options hold (the package comment
// gives the decision) and checks, on the fuzz corpus and our documents,
// that v2 refuses everything we refuse except what only we check.

package strictjson_test

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/strictjson"
)

// v2Strict is v2 with every option that holds one of our rules: its
// defaults refuse duplicate names and invalid UTF-8 and match names case
// sensitively; unknown members must be asked for.
var v2Strict = jsonv2.RejectUnknownMembers(true)

// v2Rules is each rule of the package, a document that breaks it, and
// whether v2 with v2Strict refuses that document too.
var v2Rules = []struct {
	rule, doc string
	v2        bool
}{
	{"duplicate name", `{"payload":"a","payload":"b"}`, true},
	{"duplicate name in a map", `{"labels":{"a":"1","a":"2"}}`, true},
	{"duplicate name in a raw member", `{"raw":{"a":1,"a":2}}`, true},
	{"escaped duplicate name", `{"payload":"a","p\u0061yload":"b"}`, true},
	{"invalid UTF-8 in a value", "{\"payload\":\"\xff\"}", true},
	{"invalid UTF-8 in a name", "{\"labels\":{\"\xff\":\"1\"}}", true},
	{"case-sensitive names", `{"Payload":"a"}`, true},
	{"case-sensitive names of an embedded struct", `{"Kind":"k"}`, true},
	{"unknown member", `{"payload":"a","extra":1}`, true},
	{"unknown member in an array element", `{"items":[{"name":"a","x":1}]}`, true},
	{"ignored field's name is unknown", `{"Skip":"x"}`, true},
	{"trailing data", `{"payload":"a"} {}`, true},
	{"case variant of a field", `{"payload":"a","Payload":"b"}`, true}, // as an unknown member
	{"case variant in a map", `{"labels":{"A":"1","a":"2"}}`, false},
	{"case variant in a raw member", `{"raw":{"x":1,"X":2}}`, false},
	{"Kelvin sign folds to k", `{"labels":{"k":"1","\u212a":"2"}}`, false},
	{"nesting deeper than 512", `{"raw":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, false},
}

// Each rule is ours, and v2 holds exactly the rules the table says: the
// case-variant check on untyped members (maps, raw and interface values)
// and the tighter nesting bound are ours alone.
func TestV2HoldsOurRules(t *testing.T) {
	for _, r := range v2Rules {
		if err := strictjson.Unmarshal([]byte(r.doc), new(doc)); err == nil {
			t.Errorf("%s: strictjson accepted %q", r.rule, r.doc)
		}
		err := jsonv2.Unmarshal([]byte(r.doc), new(doc), v2Strict)
		if refused := err != nil; refused != r.v2 {
			t.Errorf("%s: v2 refuses: %v (%v), the table says %v", r.rule, refused, err, r.v2)
		}
	}
}

// v2Agrees checks one input: what strictjson accepts, v2 accepts and
// decodes to the same value; what v2 accepts and strictjson refuses, it
// refuses for a rule v2 does not have.
func v2Agrees(t *testing.T, data []byte) {
	t.Helper()
	var ours, theirs doc
	errOurs := strictjson.Unmarshal(data, &ours)
	errTheirs := jsonv2.Unmarshal(data, &theirs, v2Strict)
	switch {
	case errOurs == nil && errTheirs != nil:
		t.Fatalf("%q: accepted by strictjson, refused by v2: %v", data, errTheirs)
	case errOurs == nil:
		a, _ := json.Marshal(ours)
		b, _ := json.Marshal(theirs)
		if string(a) != string(b) {
			t.Fatalf("%q: strictjson reads %s, v2 reads %s", data, a, b)
		}
	case errTheirs == nil:
		var se *strictjson.Error
		if !errors.As(errOurs, &se) || (se.Reason != strictjson.CaseVariant && se.Reason != strictjson.TooDeep) {
			t.Fatalf("%q: v2 accepts what strictjson refuses for a rule v2 holds: %v", data, errOurs)
		}
	}
}

// The fuzz corpus (seeds and testdata), every rule's document and the
// hostile documents agree with v2 as v2Agrees says.
func TestV2AgreesOnTheCorpus(t *testing.T) {
	inputs := [][]byte{
		[]byte(`{"kind":"k","payload":"p","items":[{"name":"a"}]}`),
		[]byte(`{"payload":"a","Payload":"b"}`),
		[]byte(`{"kind":"k","payload":"p","items":[{"name":"a"}],"labels":{"A":"1","b":"2"},"raw":{"x":1}}`),
	}
	for _, r := range v2Rules {
		inputs = append(inputs, []byte(r.doc))
	}
	inputs = append(inputs, corpus(t, "FuzzUnmarshal")...)
	for _, in := range inputs {
		v2Agrees(t, in)
	}
}

func FuzzAgreesWithV2(f *testing.F) {
	for _, r := range v2Rules {
		f.Add([]byte(r.doc))
	}
	f.Add([]byte(`{"kind":"k","payload":"p","items":[{"name":"a"}],"labels":{"A":"1"},"raw":[1,{"a":null}]}`))
	f.Fuzz(v2Agrees)
}

// corpus reads the committed inputs of a fuzz target.
func corpus(t *testing.T, target string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

// documents are the project's own: the golden statement, predicate, SBOM
// and OSImage document, and a DSSE envelope of the statement.
func documents(t testing.TB) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	for _, name := range []string{"statement", "predicate", "sbom", "osimage"} {
		b, err := os.ReadFile(filepath.Join("..", "provenance", "testdata", "golden", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = b
	}
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := signature.ParseSecretKey(kp.SecretKey, "")
	if err != nil {
		t.Fatal(err)
	}
	env, err := k.SignEnvelope(signature.PayloadTypeInToto, docs["statement"])
	if err != nil {
		t.Fatal(err)
	}
	docs["envelope"] = env
	return docs
}

// Our documents pass both, untyped and (the envelope) typed.
func TestV2AcceptsOurDocuments(t *testing.T) {
	for name, d := range documents(t) {
		if err := strictjson.Check(d); err != nil {
			t.Errorf("%s: strictjson: %v", name, err)
		}
		if !jsontext.Value(d).IsValid() {
			t.Errorf("%s: v2 finds it invalid", name)
		}
	}
	env := documents(t)["envelope"]
	var ours, theirs signature.Envelope
	if err := strictjson.Unmarshal(env, &ours); err != nil {
		t.Fatal(err)
	}
	if err := jsonv2.Unmarshal(env, &theirs, v2Strict); err != nil || theirs.Payload != ours.Payload {
		t.Fatalf("v2: %v", err)
	}
}

// BenchmarkV2 times, on our documents, what strictjson does against v2:
// checking an untyped document (strictjson.Check, jsontext's validation
// with duplicate names refused), and decoding the envelope into its type
// (strictjson.Unmarshal; v2 with v2Strict; v2 with v2Strict followed by
// strictjson.Check, which is what a switch would run to keep the
// case-variant rule; encoding/json alone, which holds none of the rules).
func BenchmarkV2(b *testing.B) {
	docs := documents(b)
	for _, name := range []string{"sbom", "statement"} {
		d := docs[name]
		b.Run("check/"+name+"/strictjson", func(b *testing.B) {
			b.SetBytes(int64(len(d)))
			for b.Loop() {
				if err := strictjson.Check(d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("check/"+name+"/v2", func(b *testing.B) {
			b.SetBytes(int64(len(d)))
			for b.Loop() {
				if !jsontext.Value(d).IsValid() {
					b.Fatal("invalid")
				}
			}
		})
	}
	env := docs["envelope"]
	for name, decode := range map[string]func() error{
		"strictjson": func() error { return strictjson.Unmarshal(env, new(signature.Envelope)) },
		"v2":         func() error { return jsonv2.Unmarshal(env, new(signature.Envelope), v2Strict) },
		"v2+case-variant-check": func() error {
			if err := jsonv2.Unmarshal(env, new(signature.Envelope), v2Strict); err != nil {
				return err
			}
			return strictjson.Check(env)
		},
		"encoding-json-v1": func() error { return json.Unmarshal(env, new(signature.Envelope)) },
	} {
		b.Run("unmarshal/envelope/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(env)))
			for b.Loop() {
				if err := decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
