package provenance

import (
	"github.com/socioprophet/sourceos/schemas"
)

// ValidateOSImage validates doc against schemas/OSImage.json. A document
// that breaks the schema gives a *schemas.Error listing every problem with
// its JSON pointer.
func ValidateOSImage(doc []byte) error {
	return schemas.Validate(schemas.OSImageFile, doc)
}
