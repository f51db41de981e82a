package store

import "time"

// appendStamp appends t in UTC as time's Format(stamp) does
// ("20060102T150405Z"), without going through the layout parser: ids and
// cycle keys are made and read with it for every step a report or listing
// reads, and Format was a tenth of `errpd domains`' CPU time. A year
// outside 0-9999 (none errpd stores) goes through Format.
func appendStamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, stamp)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(b, int(month), 2)
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = appendDigits(b, minute, 2)
	b = appendDigits(b, sec, 2)
	return append(b, 'Z')
}

// appendDigits appends v, 0 <= v < 10^width, as width decimal digits.
func appendDigits(b []byte, v, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; width > 0; i, width = i-1, width-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// parseStamp reads a stamp as time.Parse(stamp, s) does, without its
// general layout machinery: ids are parsed once a row by every listing and
// report. Anything but a canonical stamp of a real instant goes to
// time.Parse, for its error.
func parseStamp(s string) (time.Time, error) {
	if len(s) == len(stamp) && s[8] == 'T' && s[15] == 'Z' {
		var v [6]int
		ok := true
		for i, f := range [6][2]int{{0, 4}, {4, 6}, {6, 8}, {9, 11}, {11, 13}, {13, 15}} {
			for _, c := range []byte(s[f[0]:f[1]]) {
				ok = ok && c >= '0' && c <= '9'
				v[i] = v[i]*10 + int(c-'0')
			}
		}
		t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, time.UTC)
		// time.Date normalises out-of-range fields (Feb 30th); time.Parse
		// refuses them, and so does a stamp that does not come back.
		if ok && v[1] >= 1 && v[1] <= 12 && t.Day() == v[2] && v[3] < 24 && v[4] < 60 && v[5] < 60 {
			return t, nil
		}
	}
	return time.Parse(stamp, s)
}
