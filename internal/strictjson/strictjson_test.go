package strictjson_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

type inner struct {
	Name string `json:"name"`
}

type base struct {
	Kind string `json:"kind"`
}

type doc struct {
	base
	Payload string            `json:"payload"`
	Items   []inner           `json:"items,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Skip    string            `json:"-"`
}

func TestUnmarshal(t *testing.T) {
	var d doc
	good := `{"kind":"k","payload":"p","items":[{"name":"a"}],"labels":{"A":"1","a":"2"},"raw":{"x":1,"X":2}}`
	err := strictjson.Unmarshal([]byte(good), &d)
	if err == nil {
		t.Fatal("case-variant keys inside raw must still be refused")
	}
	good = `{"kind":"k","payload":"p","items":[{"name":"a"}],"labels":{"A":"1","b":"2"},"raw":{"x":1}}`
	if err := strictjson.Unmarshal([]byte(good), &d); err != nil {
		t.Fatalf("good document refused: %v", err)
	}
	if d.Kind != "k" || d.Payload != "p" || d.Items[0].Name != "a" || d.Labels["b"] != "2" {
		t.Errorf("decoded %+v", d)
	}
	for name, c := range map[string]struct{ in, want string }{
		"duplicate":             {`{"payload":"a","payload":"b"}`, `key "payload" given twice`},
		"case variant":          {`{"payload":"a","Payload":"b"}`, `differ only in case`},
		"case only":             {`{"Payload":"a"}`, `unknown member "Payload"`},
		"unknown":               {`{"payload":"a","extra":1}`, `unknown member "extra"`},
		"nested duplicate":      {`{"items":[{"name":"a","name":"b"}]}`, `/items/0: key "name" given twice`},
		"nested unknown":        {`{"items":[{"Name":"a"}]}`, `/items/0: unknown member "Name"`},
		"embedded case":         {`{"Kind":"k"}`, `unknown member "Kind"`},
		"ignored field":         {`{"Skip":"x"}`, `unknown member "Skip"`},
		"trailing":              {`{"payload":"a"} {}`, `trailing data`},
		"not json":              {`{"payload":`, `EOF`},
		"map duplicate":         {`{"labels":{"a":"1","a":"2"}}`, `/labels: key "a" given twice`},
		"escaped key duplicate": {`{"payload":"a","p\u0061yload":"b"}`, `given twice`},
	} {
		err := strictjson.Unmarshal([]byte(c.in), new(doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"kind":"k","payload":"p","items":[{"name":"a"}]}`))
	f.Add([]byte(`{"payload":"a","Payload":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		if strictjson.Unmarshal(data, &d) != nil {
			return
		}
		// Whatever is accepted decodes the same with encoding/json.
		var loose doc
		if err := json.Unmarshal(data, &loose); err != nil {
			t.Fatalf("accepted by strictjson, refused by encoding/json: %v", err)
		}
		a, _ := json.Marshal(d)
		b, _ := json.Marshal(loose)
		if string(a) != string(b) {
			t.Fatalf("strict %s != loose %s", a, b)
		}
	})
}
