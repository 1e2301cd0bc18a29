package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Error lists every way a document breaks its schema.
type Error struct {
	Schema   string // the schema's $id
	Problems []Problem
}

// Problem is one failed assertion.
type Problem struct {
	InstanceLocation string // JSON pointer into the document, "" for the root
	KeywordLocation  string // JSON pointer into the schema
	Message          string
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = fmt.Sprintf("at %q: %s", p.InstanceLocation, p.Message)
	}
	return fmt.Sprintf("does not match %s: %s", e.Schema, strings.Join(parts, "; "))
}

var printer = message.NewPrinter(language.English)

// compiled holds each embedded schema once compiled, by file name.
var compiled sync.Map // file -> func() (*compiledSchema, error)

type compiledSchema struct {
	id  string
	sch *jsonschema.Schema
}

// Validate validates doc against the embedded schema file (draft
// 2020-12). A document that breaks the schema gives an *Error listing
// every problem with its JSON pointer.
func Validate(file string, doc []byte) error {
	f, _ := compiled.LoadOrStore(file, sync.OnceValues(func() (*compiledSchema, error) { return compile(file) }))
	cs, err := f.(func() (*compiledSchema, error))()
	if err != nil {
		return err
	}
	return ValidateCompiled(cs.sch, cs.id, doc)
}

// ValidateCompiled validates doc against a compiled schema whose $id is
// id, as Validate does.
func ValidateCompiled(sch *jsonschema.Schema, id string, doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	err = sch.Validate(v)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err
	}
	se := &Error{Schema: id}
	collectProblems(ve, se)
	return se
}

// compile compiles an embedded schema under its own $id.
func compile(file string) (*compiledSchema, error) {
	raw, err := fs.ReadFile(FS, file)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	var head struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" {
		return nil, fmt.Errorf("schema %s: no $id", file)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(head.ID, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	sch, err := c.Compile(head.ID)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	return &compiledSchema{id: head.ID, sch: sch}, nil
}

// collectProblems adds the leaves of the validation error tree to se: the
// assertions that failed, not the combinators above them.
func collectProblems(ve *jsonschema.ValidationError, se *Error) {
	if len(ve.Causes) == 0 {
		se.Problems = append(se.Problems, Problem{
			InstanceLocation: Pointer(ve.InstanceLocation),
			KeywordLocation:  keywordLocation(ve),
			Message:          ve.ErrorKind.LocalizedString(printer),
		})
		return
	}
	for _, c := range ve.Causes {
		collectProblems(c, se)
	}
}

func keywordLocation(ve *jsonschema.ValidationError) string {
	_, frag, _ := strings.Cut(ve.SchemaURL, "#")
	return frag + Pointer(ve.ErrorKind.KeywordPath())
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// Pointer joins tokens into a JSON pointer (RFC 6901).
func Pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(pointerEscaper.Replace(t))
	}
	return sb.String()
}
