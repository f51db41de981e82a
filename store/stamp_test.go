package store

import (
	"testing"
	"time"
)

// FuzzParseStamp holds parseStamp to time.Parse(stamp, s): the same time
// for every string time.Parse takes, an error for every one it refuses.
func FuzzParseStamp(f *testing.F) {
	for _, s := range []string{"20310501T000000Z", "20240229T235959Z", "20230229T000000Z", "20311301T000000Z",
		"20310500T000000Z", "20310501T240000Z", "20310501T006000Z", "20310501T000060Z", "2031050AT000000Z",
		"00000101T000000Z", "99991231T235959Z", "20310501 000000Z", "20310501T000000", "+0310501T000000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := time.Parse(stamp, s)
		got, err := parseStamp(s)
		if (err == nil) != (werr == nil) || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("parseStamp(%q) = %v, %v; time.Parse: %v, %v", s, got, err, want, werr)
		}
	})
}
