package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
)

var (
	specKeys = map[string]bool{"edition": true, "arch": true, "hostname": true, "packages": true, "services": true, "users": true, "moduleSnippet": true}
	userKeys = map[string]bool{"name": true, "groups": true}
)

// checkKeys refuses what encoding/json would let through: keys in another
// case ("Edition") and keys given twice (the last one would win silently).
func checkKeys(data []byte) *FieldError {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil // the strict decoder reports the syntax error
	}
	if fe := objectKeys(data, "", specKeys); fe != nil {
		return fe
	}
	var users []json.RawMessage
	if raw, ok := top["users"]; ok && json.Unmarshal(raw, &users) == nil {
		for i, u := range users {
			if fe := objectKeys(u, fmt.Sprintf("users[%d].", i), userKeys); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// objectKeys walks one JSON object's keys in order.
func objectKeys(data []byte, prefix string, allowed map[string]bool) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !allowed[key]:
			return &FieldError{Field: prefix + key, Value: key, Rule: "unknown field (field names are case-sensitive)"}
		case seen[key]:
			return &FieldError{Field: prefix + key, Value: key, Rule: "given twice"}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}
