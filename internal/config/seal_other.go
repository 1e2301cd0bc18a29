//go:build !linux

package config

// nonDumpable has no portable equivalent; the environment is still cleared.
func nonDumpable() error { return nil }
