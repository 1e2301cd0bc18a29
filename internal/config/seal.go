package config

import "os"

// Seal is called once a process has loaded its configuration: it removes
// every secret variable and its _FILE form from the process environment,
// so nothing started later inherits them whatever runs it, and makes the
// process non-dumpable, so other processes of the same user can read
// neither its memory nor its initial environment through /proc (the
// kernel keeps the environment the process started with in /proc/PID/
// environ whatever the process does to its own copy). The loaded Config
// keeps the values: that is the only copy left.
func Seal() error {
	for _, name := range SecretNames() {
		if err := os.Unsetenv(name); err != nil {
			return err
		}
	}
	return nonDumpable()
}
