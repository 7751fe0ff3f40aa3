// Package offset finds where a sub-slice sits in the buffer it was cut
// from, so that a parser working on a slice of an event's Original can say
// at which byte of the record something failed.
package offset

import "unsafe"

// In returns the offset of sub in orig, or -1 when sub is not part of
// orig's array.
func In(orig, sub []byte) int {
	if len(orig) == 0 || cap(sub) == 0 {
		return -1
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(orig)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	if s < o || s > o+uintptr(len(orig)) {
		return -1
	}
	return int(s - o)
}
