package store

// upgradeV1 is a stand-in for the schema 1 -> 2 converter that the value
// encoding work provides (same name and signature): it copies each record
// unchanged and sets the schema version to 2. Delete this file when the
// real converter is merged.
func upgradeV1(bucket []byte, k, v []byte, emit func(bucket, k, v []byte) error) error {
	if string(bucket) == string(bucketMeta) && string(k) == string(keySchema) {
		return emit(bucket, k, u64(2))
	}
	return emit(bucket, k, v)
}
