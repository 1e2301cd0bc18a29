package provenance

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/socioprophet/sourceos/schemas"
)

// SchemaError lists every way a document breaks its schema.
type SchemaError struct {
	Schema   string // the schema's $id
	Problems []SchemaProblem
}

// SchemaProblem is one failed assertion.
type SchemaProblem struct {
	InstanceLocation string // JSON pointer into the document, "" for the root
	KeywordLocation  string // JSON pointer into the schema
	Message          string
}

func (e *SchemaError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = fmt.Sprintf("at %q: %s", p.InstanceLocation, p.Message)
	}
	return fmt.Sprintf("does not match %s: %s", e.Schema, strings.Join(parts, "; "))
}

var printer = message.NewPrinter(language.English)

// osImageSchema compiles the embedded OSImage schema once.
var osImageSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return compileEmbedded(schemas.OSImageID, schemas.OSImageFile)
})

func compileEmbedded(id, file string) (*jsonschema.Schema, error) {
	raw, err := fs.ReadFile(schemas.FS, file)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(id, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	return sch, nil
}

// ValidateOSImage validates doc against schemas/OSImage.json. A document
// that breaks the schema gives a *SchemaError listing every problem with
// its JSON pointer.
func ValidateOSImage(doc []byte) error {
	sch, err := osImageSchema()
	if err != nil {
		return err
	}
	return validate(sch, schemas.OSImageID, doc)
}

func validate(sch *jsonschema.Schema, id string, doc []byte) error {
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
	se := &SchemaError{Schema: id}
	collectProblems(ve, se)
	return se
}

// collectProblems adds the leaves of the validation error tree to se: the
// assertions that failed, not the combinators above them.
func collectProblems(ve *jsonschema.ValidationError, se *SchemaError) {
	if len(ve.Causes) == 0 {
		se.Problems = append(se.Problems, SchemaProblem{
			InstanceLocation: pointer(ve.InstanceLocation),
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
	return frag + pointer(ve.ErrorKind.KeywordPath())
}

// pointer joins tokens into a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(pointerEscaper.Replace(t))
	}
	return sb.String()
}
