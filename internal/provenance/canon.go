package provenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// canonical re-encodes a JSON document with sorted object keys, two-space
// indentation, no HTML escaping and a final newline. protojson deliberately
// varies its whitespace between runs, so every document built from protobuf
// types passes through here to make our output byte-for-byte reproducible.
func canonical(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return encode(v)
}

// encode writes v as indented JSON with a final newline.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return buf.Bytes(), nil
}

// objectKeys decodes doc as a JSON object and returns its members undecoded.
func objectKeys(doc []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object: null")
	}
	return m, nil
}

// officialForm checks doc is what protojson writes for m, up to key order
// and whitespace: no proto field names ("predicate_type"), no number or
// time in another spelling, nothing a protojson reader drops or merges.
func officialForm(doc []byte, m proto.Message) error {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var got, want any
	if err := decodeNumbers(doc, &got); err != nil {
		return err
	}
	if err := decodeNumbers(raw, &want); err != nil {
		return err
	}
	if !reflect.DeepEqual(got, want) {
		return errors.New("not in the form the official type writes (proto field names, or values in another spelling)")
	}
	return nil
}

// decodeNumbers decodes doc into v keeping numbers as written.
func decodeNumbers(doc []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode json: %w", err)
	}
	return nil
}

// pointerEscaper makes a key a JSON pointer token (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// diffJSON lists, as JSON pointers with both values, every place where
// got differs from want once both are encoded as JSON.
func diffJSON(want, got any) ([]string, error) {
	var w, g any
	for _, x := range []struct {
		in  any
		out *any
	}{{want, &w}, {got, &g}} {
		raw, err := json.Marshal(x.in)
		if err != nil {
			return nil, fmt.Errorf("compare json: %w", err)
		}
		if err := decodeNumbers(raw, x.out); err != nil {
			return nil, fmt.Errorf("compare json: %w", err)
		}
	}
	var out []string
	diffValue("", w, g, &out)
	return out, nil
}

func diffValue(path string, want, got any, out *[]string) {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		for _, k := range sortedKeys(wm, gm) {
			p := path + "/" + pointerEscaper.Replace(k)
			wv, inW := wm[k]
			gv, inG := gm[k]
			switch {
			case !inG:
				*out = append(*out, fmt.Sprintf("%s is missing, expected %s", p, short(wv)))
			case !inW:
				*out = append(*out, fmt.Sprintf("%s is %s, expected nothing", p, short(gv)))
			default:
				diffValue(p, wv, gv, out)
			}
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		if path == "" {
			path = "/"
		}
		*out = append(*out, fmt.Sprintf("%s is %s, expected %s", path, short(got), short(want)))
	}
}

func sortedKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sortStrings(keys)
	return keys
}

// short is v as compact JSON, cut at 80 bytes.
func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}
