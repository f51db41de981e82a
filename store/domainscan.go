package store

// DomainsAfter calls fn for up to limit domains whose name sorts after
// after ("" starts at the first), in name order, and returns the last name
// it read, or "" when there were none. A search over every domain calls it
// in a loop, one short read transaction per chunk, as StepsAfter does for
// steps.
func (t *Tx) DomainsAfter(after string, limit int, fn func(Domain) error) (string, error) {
	b := t.tx.Bucket(bucketDomains)
	c := b.Cursor()
	k, _ := c.Seek([]byte(after))
	if k != nil && after != "" && string(k) == after {
		k, _ = c.Next()
	}
	last := ""
	for n := 0; k != nil && n < limit; k, _ = c.Next() {
		var d Domain
		if _, err := getJSON(b, k, &d); err != nil {
			return last, err
		}
		last = string(k)
		if err := fn(d); err != nil {
			return last, err
		}
		n++
	}
	return last, nil
}
