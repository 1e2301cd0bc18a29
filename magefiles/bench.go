//go:build mage

package main

import "github.com/magefile/mage/mg"

// Bench runs the committed benchmarks side by side with the peer tools.
type Bench mg.Namespace
