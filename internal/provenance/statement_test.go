package provenance

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	ita "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func testStatement(t *testing.T) ([]Subject, []byte, []byte) {
	t.Helper()
	pred, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	subjects := []Subject{
		{Name: "vmlinuz", SHA256: strings.Repeat("b", 64), SHA512: strings.Repeat("c", 128)},
		{Name: "initrd", SHA256: strings.Repeat("a", 64)},
		testImage(),
	}
	st, err := Statement(subjects, pred)
	if err != nil {
		t.Fatal(err)
	}
	return subjects, pred, st
}

func TestStatementRoundTrip(t *testing.T) {
	subjects, pred, st := testStatement(t)
	var official ita.Statement
	if err := protojson.Unmarshal(st, &official); err != nil {
		t.Fatalf("official type rejects our statement: %v", err)
	}
	if err := official.Validate(); err != nil {
		t.Fatalf("official Validate: %v", err)
	}
	if !strings.Contains(string(st), `"_type": "https://in-toto.io/Statement/v1"`) ||
		!strings.Contains(string(st), `"predicateType": "https://slsa.dev/provenance/v1"`) {
		t.Fatalf("statement lacks camelCase _type/predicateType:\n%s", st)
	}
	got, err := CheckStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Subjects, subjects) {
		t.Errorf("subjects = %+v, want %+v (order kept)", got.Subjects, subjects)
	}
	if got.PredicateType != SLSAPredicateType || string(got.Predicate) != string(pred) {
		t.Errorf("predicate did not round-trip:\n%s\nwant\n%s", got.Predicate, pred)
	}
	if err := CheckSLSAPredicate(got.Predicate); err != nil {
		t.Error(err)
	}
}

func TestStatementGolden(t *testing.T) {
	withBuilderVersion(t)
	_, _, st := testStatement(t)
	golden(t, "statement.json", st)
}

func TestStatementRejectsBadSubjects(t *testing.T) {
	pred, err := SLSAPredicate(testBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	good := testImage()
	for name, subjects := range map[string][]Subject{
		"none":            nil,
		"no name":         {{SHA256: good.SHA256}},
		"no sha256":       {{Name: "x", SHA512: good.SHA512}},
		"uppercase hex":   {{Name: "x", SHA256: strings.ToUpper(good.SHA256)}},
		"short sha256":    {{Name: "x", SHA256: good.SHA256[:62]}},
		"bad sha512":      {{Name: "x", SHA256: good.SHA256, SHA512: good.SHA256}},
		"duplicate names": {good, good},
	} {
		if _, err := Statement(subjects, pred); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Statement([]Subject{good}, []byte(`[1]`)); err == nil {
		t.Error("non-object predicate accepted")
	}
}

func TestCheckStatementRejects(t *testing.T) {
	_, _, st := testStatement(t)
	s := string(st)
	cases := map[string]string{
		"v0.1 type":         strings.Replace(s, "Statement/v1", "Statement/v0.1", 1),
		"other type":        strings.Replace(s, "https://in-toto.io/Statement/v1", "https://example.org/x", 1),
		"unknown member":    strings.Replace(s, `"_type"`, `"extra": 1, "_type"`, 1),
		"uppercase digest":  strings.Replace(s, strings.Repeat("b", 64), strings.Repeat("B", 64), 1),
		"truncated digest":  strings.Replace(s, strings.Repeat("a", 64), strings.Repeat("a", 63), 1),
		"sha1 only subject": strings.Replace(s, `"sha256": "`+strings.Repeat("a", 64)+`"`, `"sha1": "`+strings.Repeat("a", 40)+`"`, 1),
		"no predicate type": strings.Replace(s, `"predicateType": "https://slsa.dev/provenance/v1"`, `"predicateType": ""`, 1),
		"no subjects":       `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`,
		"no predicate":      `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}],"predicateType":"x"}`,
		"not json":          `{"_type":`,
	}
	for name, doc := range cases {
		if doc == s {
			t.Fatalf("%s: mutation did not change the statement", name)
		}
		if _, err := CheckStatement([]byte(doc)); !errors.Is(err, ErrBadStatement) {
			t.Errorf("%s: CheckStatement = %v, want ErrBadStatement", name, err)
		}
	}
}
