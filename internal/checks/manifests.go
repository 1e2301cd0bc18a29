package checks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Manifest kinds: their directory and the schema (under schemas/) that
// every *.json file of the directory must satisfy.
var manifestKinds = []manifestKind{
	{Dir: "channels", Schema: "schemas/channel.schema.json", NameField: "channel"},
	{Dir: "builders", Schema: "schemas/builder.schema.json", NameField: "name"},
}

type manifestKind struct {
	Dir    string
	Schema string
	// NameField is the field that must equal the file's base name.
	NameField string
}

// checkManifests validates channel and builder manifests against their
// schemas, then what a schema cannot say: names match file names, a builder's
// channel and host exist.
func checkManifests(root string) Result {
	res := Result{Check: CheckManifests}
	valid := map[string]map[string]any{} // dir -> name -> valid document
	var skipped []string
	for _, k := range manifestKinds {
		if _, err := os.Stat(filepath.Join(root, k.Schema)); errors.Is(err, os.ErrNotExist) {
			// A tree with no schema of its own for these manifests (one
			// adopting the pipeline) is not held to this one's.
			skipped = append(skipped, fmt.Sprintf("%s: no %s", k.Dir, k.Schema))
			continue
		}
		found, checked, fails := validateKind(root, k)
		valid[k.Dir] = found
		res.Checked += checked
		res.Failures = append(res.Failures, fails...)
	}
	res.Failures = append(res.Failures, crossCheckBuilders(root, valid["builders"])...)
	if len(skipped) > 0 {
		res.Note = "not checked: " + strings.Join(skipped, "; ")
	}
	return res
}

func validateKind(root string, k manifestKind) (map[string]any, int, []Failure) {
	found := map[string]any{}
	sch, err := compileSchema(root, k.Schema)
	if err != nil {
		return found, 0, []Failure{{Check: CheckManifests, File: k.Schema, Message: err.Error()}}
	}
	files, _ := filepath.Glob(filepath.Join(root, k.Dir, "*.json"))
	sort.Strings(files)
	if len(files) == 0 {
		return found, 0, []Failure{{Check: CheckManifests, File: k.Dir, Message: "no manifests", Expected: "at least one " + k.Dir + "/*.json", Found: "none"}}
	}
	var fails []Failure
	for _, f := range files {
		rel := k.Dir + "/" + filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			fails = append(fails, Failure{Check: CheckManifests, File: rel, Message: err.Error()})
			continue
		}
		doc, errs := ValidateManifest(sch, rel, data)
		fails = append(fails, errs...)
		if len(errs) == 0 {
			fails = append(fails, checkName(rel, data, doc, k.NameField)...)
			found[strings.TrimSuffix(filepath.Base(f), ".json")] = doc
		}
	}
	return found, len(files), fails
}

func compileSchema(root, rel string) (*jsonschema.Schema, error) {
	fh, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	doc, err := jsonschema.UnmarshalJSON(fh)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	url := "file:///" + rel
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return c.Compile(url)
}

// ValidateManifest decodes a manifest and validates it against the schema:
// one failure per violated rule, each naming the field and its line.
func ValidateManifest(sch *jsonschema.Schema, file string, data []byte) (any, []Failure) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, []Failure{syntaxFailure(file, data, err)}
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	if err == nil {
		return doc, nil
	}
	if !errors.As(err, &ve) {
		return nil, []Failure{{Check: CheckManifests, File: file, Message: err.Error()}}
	}
	var out []Failure
	for _, leaf := range leaves(ve) {
		ptr := "/" + strings.Join(escapePointer(leaf.InstanceLocation), "/")
		if len(leaf.InstanceLocation) == 0 {
			ptr = ""
		}
		out = append(out, Failure{Check: CheckManifests, File: file, Line: PointerLine(data, ptr),
			Subject: fieldName(leaf.InstanceLocation), Message: leafMessage(leaf)})
	}
	return nil, out
}

// leaves are the validation errors with no causes: the rules broken.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func leafMessage(e *jsonschema.ValidationError) string {
	if u := e.BasicOutput(); u != nil && u.Error != nil {
		return u.Error.String()
	}
	return e.Error()
}

func fieldName(loc []string) string {
	if len(loc) == 0 {
		return "(document)"
	}
	return "field " + strings.Join(loc, ".")
}

func escapePointer(segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
	}
	return out
}

func syntaxFailure(file string, data []byte, err error) Failure {
	f := Failure{Check: CheckManifests, File: file, Message: "invalid JSON: " + err.Error()}
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(data, new(any)), &se) {
		f.Line = lineAt(data, int(se.Offset))
		f.Message = "invalid JSON: " + se.Error()
	}
	return f
}

// checkName: the name field equals the file's base name.
func checkName(file string, data []byte, doc any, field string) []Failure {
	want := strings.TrimSuffix(path.Base(file), ".json")
	got, _ := doc.(map[string]any)[field].(string)
	if got == want {
		return nil
	}
	return []Failure{{Check: CheckManifests, File: file, Line: PointerLine(data, "/"+field), Subject: "field " + field,
		Message: "must equal the file's base name", Expected: quote(want), Found: quote(got)}}
}

// crossCheckBuilders: a builder's channel has a manifest (valid or not: an
// invalid one is reported once, by itself), and its host_config names a host
// of hosts/ whose facts entry has the same system.
func crossCheckBuilders(root string, builders map[string]any) []Failure {
	facts, _ := LoadHostFacts(root)
	var out []Failure
	for _, name := range sortedKeys(builders) {
		b := builders[name].(map[string]any)
		file := "builders/" + name + ".json"
		data, _ := os.ReadFile(filepath.Join(root, file))
		ch, _ := b["channel"].(string)
		if _, err := os.Stat(filepath.Join(root, "channels", ch+".json")); err != nil {
			out = append(out, Failure{Check: CheckManifests, File: file, Line: PointerLine(data, "/channel"), Subject: "field channel",
				Message: "names no channel manifest", Expected: "channels/" + ch + ".json", Found: "none"})
		}
		out = append(out, checkHostConfig(root, file, data, b, facts)...)
	}
	return out
}

func checkHostConfig(root, file string, data []byte, b map[string]any, c *HostFacts) []Failure {
	host, _ := b["host_config"].(string)
	fail := Failure{Check: CheckManifests, File: file, Line: PointerLine(data, "/host_config"), Subject: "field host_config"}
	if _, err := os.Stat(filepath.Join(root, "hosts", host, "default.nix")); err != nil {
		fail.Message, fail.Expected, fail.Found = "names no host", "hosts/"+host+"/default.nix", "none"
		return []Failure{fail}
	}
	if c == nil {
		return nil
	}
	hc, ok := c.Hosts[host]
	if !ok {
		fail.Message, fail.Expected, fail.Found = "host has no entry in hosts/facts.json", "an entry in "+HostFactsFile, "none"
		return []Failure{fail}
	}
	if sys, _ := b["system"].(string); hc.System != "" && sys != hc.System {
		return []Failure{{Check: CheckManifests, File: file, Line: PointerLine(data, "/system"), Subject: "field system",
			Message: "must match the system of host " + host, Expected: quote(hc.System), Found: quote(sys)}}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }
