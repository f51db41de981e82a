package report

import (
	"reflect"
	"slices"
	"testing"

	"github.com/errpd/errpd/store"
)

// TestMergeAddsEveryCount: merge adds every count of a summary (a count
// added to Summary but not to merge fails here), and works out Owed and
// the rate from the sums.
func TestMergeAddsEveryCount(t *testing.T) {
	var one, want Summary
	v, w := reflect.ValueOf(&one).Elem(), reflect.ValueOf(&want).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.Int {
			v.Field(i).SetInt(int64(100 - i))
			w.Field(i).SetInt(int64(2 * (100 - i)))
		}
	}
	one.total()
	want.total()
	got := one
	got.merge(one)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge of %+v with itself:\n%+v, want\n%+v", one, got, want)
	}
	if want.ComplianceRate == nil {
		t.Fatal("no rate: a poor test")
	}
}

// TestMergeSorted: two sorted lists of ids become one, in order, an id in
// both (its deadline moved between two reads) kept once.
func TestMergeSorted(t *testing.T) {
	for _, c := range []struct{ a, b, want []store.StepRef }{
		{nil, nil, nil},
		{[]store.StepRef{"a", "c"}, nil, []store.StepRef{"a", "c"}},
		{nil, []store.StepRef{"b"}, []store.StepRef{"b"}},
		{[]store.StepRef{"a", "c", "e"}, []store.StepRef{"b", "c", "d", "f", "g"}, []store.StepRef{"a", "b", "c", "d", "e", "f", "g"}},
	} {
		if got := mergeSorted(slices.Clone(c.a), slices.Clone(c.b)); !slices.Equal(got, c.want) {
			t.Errorf("mergeSorted(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}
