package calendar

// SetBatchSize sets the rows of a write transaction, for the benchmark to
// measure other sizes (ERRPD_BENCH_BATCH); the func it returns restores it.
func SetBatchSize(n int) func() {
	was := batchSize
	batchSize = n
	return func() { batchSize = was }
}
