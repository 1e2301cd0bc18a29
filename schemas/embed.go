// Package schemas holds the JSON Schemas of the documents SourceOS emits,
// embedded so that validation needs no network and no files at run time.
package schemas

import "embed"

// FS holds every *.json schema of this directory, by file name.
//
//go:embed *.json
var FS embed.FS

// OSImageFile is the file name of the OSImage document schema in FS.
const OSImageFile = "OSImage.json"

// OSImageID is the $id of the OSImage schema.
const OSImageID = "https://schemas.srcos.ai/v2/OSImage.json"
