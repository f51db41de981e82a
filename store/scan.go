package store

import (
	"bytes"
	"strings"
)

// StepsAfter calls fn for up to limit steps whose id starts with prefix and
// sorts after the id after ("" starts at the first), in id order, and
// returns the last id it read, or "" when there were none. Long scans (a
// report over millions of steps) call it in a loop, one read transaction per
// chunk, so that no read transaction holds old pages for minutes while the
// daemon writes.
func (t *Tx) StepsAfter(prefix, after string, limit int, fn func(Step) error) (string, error) {
	b := t.tx.Bucket(bucketSteps)
	c := b.Cursor()
	p, exact := prefixKey(prefix)
	var afterKey []byte
	if after != "" {
		afterKey = idKey(after)
	}
	k, v := seekAfter(c, p, afterKey)
	last := ""
	for n := 0; k != nil && bytes.HasPrefix(k, p) && n < limit; k, v = c.Next() {
		var s Step
		if err := decodeValue(k, v, &s); err != nil {
			return last, err
		}
		if !exact && !strings.HasPrefix(s.ID, prefix) {
			continue
		}
		last = s.ID
		if err := fn(s); err != nil {
			return last, err
		}
		n++
	}
	return last, nil
}
