// Package strictjson decodes JSON that must mean the same thing to every
// parser that reads it: documents we verify and then hand on (a DSSE
// envelope, a statement), and documents an untrusted party writes (a build
// record, a spec). encoding/json keeps the last of two equal keys, matches
// field names without regard to case and ignores unknown members; another
// parser may keep the first key or the exactly-cased one, and so read a
// different document than the one we checked. Unmarshal refuses all of
// that: duplicate keys (also when they differ only in case), a member name
// that is not exactly a field's, unknown members and trailing data.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Error locates what was refused with a JSON pointer.
type Error struct {
	Pointer string
	Msg     string
}

func (e *Error) Error() string {
	if e.Pointer == "" {
		return "json: " + e.Msg
	}
	return fmt.Sprintf("json %s: %s", e.Pointer, e.Msg)
}

// Unmarshal decodes data into v (a pointer) strictly; see the package
// comment. Members decoded into json.RawMessage or interface values are
// checked for duplicate keys only.
func Unmarshal(data []byte, v any) error {
	if err := checkDuplicates(data); err != nil {
		return err
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "json: ")}
	}
	if len(bytes.Trim(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return &Error{Msg: "trailing data after the document"}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Unmarshal needs a non-nil pointer")
	}
	if err := checkMembers(tree, rv.Type().Elem(), ""); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "json: ")}
	}
	return nil
}

// checkDuplicates walks every object of the document and refuses a key
// that appears twice, also in another case.
func checkDuplicates(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkValue(dec, "")
}

func walkValue(dec *json.Decoder, ptr string) error {
	tok, err := dec.Token()
	if err != nil {
		return &Error{Pointer: ptr, Msg: strings.TrimPrefix(err.Error(), "json: ")}
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, ptr)
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, fmt.Sprintf("%s/%d", ptr, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

func walkObject(dec *json.Decoder, ptr string) error {
	seen := map[string]string{} // folded key -> key as first seen
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &Error{Pointer: ptr, Msg: strings.TrimPrefix(err.Error(), "json: ")}
		}
		key := tok.(string)
		fold := strings.ToLower(key)
		if first, dup := seen[fold]; dup {
			if first == key {
				return &Error{Pointer: ptr, Msg: fmt.Sprintf("key %q given twice", key)}
			}
			return &Error{Pointer: ptr, Msg: fmt.Sprintf("keys %q and %q differ only in case", first, key)}
		}
		seen[fold] = key
		if err := walkValue(dec, ptr+"/"+escape(key)); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

var (
	rawMessage = reflect.TypeFor[json.RawMessage]()
	unmarshler = reflect.TypeFor[json.Unmarshaler]()
)

// checkMembers compares the decoded tree with the type it will be decoded
// into: every member of an object bound to a struct must be exactly the
// name of one of its fields.
func checkMembers(tree any, t reflect.Type, ptr string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessage || reflect.PointerTo(t).Implements(unmarshler) {
		return nil
	}
	switch node := tree.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := fieldsOf(t)
			for k, v := range node {
				ft, ok := fields[k]
				if !ok {
					return &Error{Pointer: ptr, Msg: fmt.Sprintf("unknown member %q (names are case-sensitive)", k)}
				}
				if err := checkMembers(v, ft, ptr+"/"+escape(k)); err != nil {
					return err
				}
			}
		case reflect.Map:
			for k, v := range node {
				if err := checkMembers(v, t.Elem(), ptr+"/"+escape(k)); err != nil {
					return err
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, v := range node {
				if err := checkMembers(v, t.Elem(), fmt.Sprintf("%s/%d", ptr, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fieldsOf maps the JSON member names of a struct (embedded structs
// flattened, as encoding/json does) to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
	return out
}

// escape makes a key a JSON pointer token (RFC 6901).
func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}
