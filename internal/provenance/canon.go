package provenance

import (
	"bytes"
	"encoding/json"
	"fmt"
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
