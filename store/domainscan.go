package store

// DomainsAfter calls fn for up to limit domains whose name sorts after
// after ("" starts at the first), in name order, and returns the last name
// it read, or "" when there were none. A search over every domain calls it
// in a loop, one short read transaction per chunk, as StepsAfter does for
// steps.
func (t *Tx) DomainsAfter(after string, limit int, fn func(Domain) error) (string, error) {
	b := t.tx.Bucket(bucketDomains)
	c := b.Cursor()
	k, v := seekAfter(c, nil, []byte(after))
	last := ""
	for n := 0; k != nil && n < limit; k, v = c.Next() {
		// The cursor holds the value already: decoding it, not getJSON's
		// b.Get(k), spares a second descent of the tree per domain.
		var d Domain
		if err := decodeValue(k, v, &d); err != nil {
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
