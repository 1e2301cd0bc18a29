// Package provenancetest holds what tests of the documents share: the
// official CycloneDX 1.6 JSON schema (in internal/provenance/testdata),
// compiled once with formats asserted.
package provenancetest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CycloneDXSchema is the official CycloneDX 1.6 schema with the schemas it
// refers to (SPDX licence ids, JSF), compiled once.
var CycloneDXSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "..", "testdata", "cyclonedx")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if err := c.AddResource("http://cyclonedx.org/schema/"+f, doc); err != nil {
			return nil, err
		}
	}
	return c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
})

// ValidateCycloneDX validates sbom against the CycloneDX 1.6 schema.
func ValidateCycloneDX(t testing.TB, sbom []byte) error {
	t.Helper()
	sch, err := CycloneDXSchema()
	if err != nil {
		t.Fatalf("compile the CycloneDX schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(sbom))
	if err != nil {
		return err
	}
	return sch.Validate(doc)
}
