package store

import "testing"

// Keys taken in order leave a bucket marked sorted, also when they share
// their first eight bytes; one out of order does not. (Before, a key was
// compared before it was copied in, with the zeroes behind it.)
func TestMergeIterSorted(t *testing.T) {
	var x mergeIter
	x.sorted = true
	for _, k := range []string{"example-a.com", "example-b.com", "example-c.com"} {
		x.add([]byte(k), []byte("v"))
	}
	if !x.sorted {
		t.Error("keys taken in order are not marked sorted")
	}
	x.add([]byte("example-a.org"), nil)
	if x.sorted {
		t.Error("a key taken out of order left the bucket marked sorted")
	}
}
