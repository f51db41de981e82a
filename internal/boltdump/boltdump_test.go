package boltdump

import (
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func write(t *testing.T, path string, seq uint64, kv ...string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		for i := 0; i < len(kv); i += 2 {
			if err := b.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return b.SetSequence(seq)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Diff finds no difference between equal files, and names each kind.
func TestDiff(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for name, args := range map[string][]string{
		"same": {"a", "1", "b", "2"}, "other": {"a", "1", "b", "3"}, "fewer": {"a", "1"},
	} {
		files[name] = filepath.Join(dir, name+".db")
		write(t, files[name], 7, args...)
	}
	files["seq"] = filepath.Join(dir, "seq.db")
	write(t, files["seq"], 8, "a", "1", "b", "2")
	want, err := File(files["same"])
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(want, want); len(d) != 0 {
		t.Errorf("a file differs from itself: %q", d)
	}
	for name, diff := range map[string]string{"other": "record 1", "fewer": "1 records, want 2", "seq": "sequence 8, want 7"} {
		got, err := File(files[name])
		if err != nil {
			t.Fatal(err)
		}
		if d := Diff(want, got); len(d) != 1 || !strings.Contains(d[0], diff) {
			t.Errorf("%s: Diff = %q, want one saying %q", name, d, diff)
		}
	}
	if d := Diff(want, map[string]Bucket{}); len(d) != 1 || !strings.Contains(d[0], "missing") {
		t.Errorf("Diff against no buckets = %q", d)
	}
}
