package calendar

import (
	"strconv"
	"testing"
)

// Across folds of the map into the sorted slices, every name keeps its
// first line and a name never listed has none.
func TestSeenAcrossFolds(t *testing.T) {
	t.Parallel()
	s := newSeen()
	const n = 3*foldAt + 123
	for i := range n {
		s.add("d"+strconv.Itoa(i)+".example", i+2)
	}
	if len(s.hashes) != 3*foldAt || len(s.young) != 123 {
		t.Fatalf("%d hashes folded, %d in the map; want %d and 123", len(s.hashes), len(s.young), 3*foldAt)
	}
	for i := range n {
		if got := s.line("d" + strconv.Itoa(i) + ".example"); got != i+2 {
			t.Fatalf("d%d.example: line %d, want %d", i, got, i+2)
		}
	}
	for i := n; i < n+1000; i++ {
		if got := s.line("d" + strconv.Itoa(i) + ".example"); got != 0 {
			t.Fatalf("d%d.example was never listed, but line %d", i, got)
		}
	}
}
