package spec

// SystemAccounts exposes the list for tests.
func SystemAccounts() map[string]bool { return systemUsers }
