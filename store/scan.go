package store

import "bytes"

// StepsAfter calls fn for up to limit steps whose id starts with prefix and
// sorts after the id after ("" starts at the first), in id order, and
// returns the last id it read, or "" when there were none. Long scans (a
// report over millions of steps) call it in a loop, one read transaction per
// chunk, so that no read transaction holds old pages for minutes while the
// daemon writes.
func (t *Tx) StepsAfter(prefix, after string, limit int, fn func(Step) error) (string, error) {
	b := t.tx.Bucket(bucketSteps)
	c := b.Cursor()
	p := []byte(prefix)
	var k []byte
	if after == "" {
		k, _ = c.Seek(p)
	} else {
		k, _ = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
	}
	last := ""
	for n := 0; k != nil && bytes.HasPrefix(k, p) && n < limit; k, _ = c.Next() {
		var s Step
		if _, err := getJSON(b, k, &s); err != nil {
			return last, err
		}
		last = string(k)
		if err := fn(s); err != nil {
			return last, err
		}
		n++
	}
	return last, nil
}
