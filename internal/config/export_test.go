package config

import "io/fs"

// CheckAncestorsIn is CheckAncestors over another /proc, from ppid.
func (c *Config) CheckAncestorsIn(proc fs.FS, ppid int) error { return c.checkAncestors(proc, ppid) }
