package calendar

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// headerError explains a header that could not be read or lacks columns,
// in the terms of the usual mistakes: an empty file, or a spreadsheet's
// export with semicolons (its list separator in many locales).
func headerError(file string, line int, head []string, err error, missing []string) error {
	want := strings.Join(Columns, ",")
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s is empty: a calendar starts with the header line %s, then one row per domain", file, want)
	case err != nil:
		return fmt.Errorf("%s: reading header: %w", file, err)
	case len(head) == 1 && strings.Count(head[0], ";") >= len(Columns)/2:
		return fmt.Errorf("%s:%d: the header is separated by semicolons; use commas: %s (a spreadsheet's \"CSV\" export may use semicolons; choose comma as the separator)", file, line, want)
	}
	return fmt.Errorf("%s:%d: header lacks column %s (want %s)", file, line, strings.Join(missing, ", "), want)
}
