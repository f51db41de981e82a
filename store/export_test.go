package store

// Internals for package store_test, which edits values in the file as an
// attacker would.

func (m *Message) Unmarshal(raw []byte) error { return m.unmarshal(raw) }
func (m Message) Marshal() ([]byte, error)    { return m.marshal() }

// DecodeRecord reads a stored audit record (its Prev left empty).
func DecodeRecord(k, raw []byte) (Record, error) { return decodeRecord(k, raw, "") }
func (r Record) Marshal() ([]byte, error)        { return r.marshal() }
