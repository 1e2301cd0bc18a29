package nixstore

import (
	"encoding/json"
	"fmt"
)

// ShowConfigArgs is the argv (after "nix") that prints Nix's settings as
// JSON, whatever experimental features nix.conf enables.
func ShowConfigArgs() []string {
	return []string{"--extra-experimental-features", "nix-command", "show-config", "--json"}
}

// Settings is what `nix show-config --json` printed.
type Settings map[string]json.RawMessage

// ParseSettings reads `nix show-config --json`.
func ParseSettings(data []byte) (Settings, error) {
	var s Settings
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse nix show-config --json: %w", err)
	}
	return s, nil
}

// Get decodes the value of the setting name into v and reports whether it
// is there. Every release prints an entry {"value": v, …}; older ones the
// bare value.
func (s Settings) Get(name string, v any) (bool, error) {
	r, ok := s[name]
	if !ok {
		return false, nil
	}
	var entry struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(r, &entry) == nil && entry.Value != nil {
		r = entry.Value
	}
	if err := json.Unmarshal(r, v); err != nil {
		return true, fmt.Errorf("nix show-config: %s: %w", name, err)
	}
	return true, nil
}

// String is the setting's value as text: true, false, relaxed, a path, a
// group name; lists joined by spaces. "" when it is not set.
func (s Settings) String(name string) (string, error) {
	var v any
	ok, err := s.Get(name, &v)
	if !ok || err != nil {
		return "", err
	}
	switch x := v.(type) {
	case bool:
		return fmt.Sprint(x), nil
	case string:
		return x, nil
	case []any:
		out := ""
		for i, e := range x {
			if i > 0 {
				out += " "
			}
			out += fmt.Sprint(e)
		}
		return out, nil
	}
	return "", fmt.Errorf("nix show-config: %s: unexpected value %v", name, v)
}
