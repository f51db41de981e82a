package calendar

// SetBatchSize sets the rows of a write transaction, for the benchmark to
// measure other sizes (ERRPD_BENCH_BATCH); the func it returns restores it.
func SetBatchSize(n int) func() {
	was := batchSize
	batchSize = n
	return func() { batchSize = was }
}

// SetWindow sets the rows read and sorted at a time, for the tests of many
// windows; the func it returns restores it.
func SetWindow(n int) func() {
	was := window
	window = n
	return func() { window = was }
}
