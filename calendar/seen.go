package calendar

import (
	"hash/maphash"
	"math"
	"slices"
)

// seen is the set of domains a calendar listed so far, by a hash of the
// name, each with its first line: to name that line when a domain comes
// again, and for a full sync to tell the stored domains it did not list.
// A hash, not the name: a name is a piece of its row's string and would
// keep the whole row alive, a million of them on a large calendar. Two
// names share a 64-bit hash once in 10^13 pairs.
//
// A map of a million hashes and lines takes some 34 MB (and 51 MB while it
// grows), which the collector lets the daemon's heap double. So only the
// latest hashes are in a map; every foldAt of them are merged into two
// sorted slices, 12 bytes a domain, searched by halving.
type seen struct {
	seed   maphash.Seed
	young  map[uint64]int
	hashes []uint64 // sorted
	lines  []uint32 // lines[i] is the line of hashes[i]
}

// foldAt hashes are kept in the map before they are merged into the
// slices: a merge copies the slices, so it must not be too frequent.
const foldAt = 1 << 16

func newSeen() *seen {
	return &seen{seed: maphash.MakeSeed(), young: map[uint64]int{}}
}

// line is the line on which name was listed, or 0.
func (s *seen) line(name string) int {
	h := maphash.String(s.seed, name)
	if l, ok := s.young[h]; ok {
		return l
	}
	if i, ok := slices.BinarySearch(s.hashes, h); ok {
		return int(s.lines[i])
	}
	return 0
}

// add records that name is listed on line (line > 0; name not yet seen).
func (s *seen) add(name string, line int) {
	s.young[maphash.String(s.seed, name)] = line
	if len(s.young) >= foldAt {
		s.fold()
	}
}

// fold merges the map into the sorted slices.
func (s *seen) fold() {
	young := make([]uint64, 0, len(s.young))
	for h := range s.young {
		young = append(young, h)
	}
	slices.Sort(young)
	n := len(s.hashes) + len(young)
	hashes, lines := make([]uint64, 0, n), make([]uint32, 0, n)
	i := 0
	for _, h := range young {
		for ; i < len(s.hashes) && s.hashes[i] < h; i++ {
			hashes, lines = append(hashes, s.hashes[i]), append(lines, s.lines[i])
		}
		// A line past 2^32 (a calendar of 8 GB of empty lines) is named
		// as the last one a uint32 holds, never as 0, "not seen".
		hashes, lines = append(hashes, h), append(lines, uint32(min(s.young[h], math.MaxUint32)))
	}
	hashes, lines = append(hashes, s.hashes[i:]...), append(lines, s.lines[i:]...)
	s.hashes, s.lines = hashes, lines
	clear(s.young)
}
