//go:build mage

package main

import "github.com/magefile/mage/mg"

// Keys generates the key pairs the pipeline signs with.
type Keys mg.Namespace
