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
