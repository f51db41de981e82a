//go:build !unix

package store

// adviseNormal does nothing where madvise does not exist.
func adviseNormal(uintptr, int) {}
