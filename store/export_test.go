package store

// Internals for package store_test, which edits values in the file as an
// attacker would.

func (m *Message) Unmarshal(raw []byte) error { return m.unmarshal(raw) }
func (m Message) Marshal() ([]byte, error)    { return m.marshal() }

// DecodeRecord reads a stored audit record (its Prev left empty).
func DecodeRecord(k, raw []byte) (Record, error) { return decodeRecord(k, raw, "") }
func (r Record) Marshal() ([]byte, error)        { return r.marshal() }

// UpgradeV1 is upgradeV1, for the test that runs it over a whole store.
var UpgradeV1 = upgradeV1

// KeyID and DecodeValue read keys and values as the store does.
var KeyID = keyID

func DecodeValue(k, v []byte, into any) error { return decodeValue(k, v, into) }
