// Package custom embeds the fixed flake of custom builds, so a compiled
// mage binary (the GCP build VM lane) can compose a build without a checkout
// of this repository.
package custom

import _ "embed"

// Flake is editions/custom/flake.nix, byte for byte.
//
//go:embed flake.nix
var Flake []byte
