package report

// SetPeriodCap sets how many ids of a period a pass holds, for the tests of
// the passes, and returns the function that puts it back.
func SetPeriodCap(n int) (restore func()) {
	old := periodCap
	periodCap = n
	return func() { periodCap = old }
}

// SetReadChunk makes a period report read n steps a transaction, until
// the returned func restores the size.
func SetReadChunk(n int) func() {
	old := readChunkSize
	readChunkSize = n
	return func() { readChunkSize = old }
}

// AppendCSV is appendCSV, the report's own CSV line encoder.
var AppendCSV = appendCSV

// Record is the row's CSV fields, as a report writes them.
func (r *Row) Record() []string { return r.record() }

// Header is the CSV header.
func Header() []string { return header }

// SetIndexChunk makes a period's walk read n deadline index entries a
// transaction, until the returned func restores the size.
func SetIndexChunk(n int) func() {
	old := indexChunk
	indexChunk = n
	return func() { indexChunk = old }
}

// SetWalkHook has fn called before each read of a part's walk of the
// deadline index (done false) and once the part's walk has ended (true),
// until the returned func takes it off.
func SetWalkHook(fn func(part int, done bool)) func() {
	walkHook = fn
	return func() { walkHook = nil }
}
