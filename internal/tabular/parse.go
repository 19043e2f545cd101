package tabular

import (
	"fmt"
	"strings"
	"time"
)

// timeLayouts are the ways dates and times arrive in spreadsheets: ours,
// Excel's Chinese-locale defaults, and the compact 20060102 of paper forms.
var timeLayouts = []string{
	"2006-1-2 15:04:05",
	"2006-1-2 15:04",
	"2006-1-2",
	"2006/1/2 15:04:05",
	"2006/1/2 15:04",
	"2006/1/2",
	"2006.1.2",
	"2006年1月2日 15:04:05",
	"2006年1月2日 15:04",
	"2006年1月2日",
	"20060102",
	"2006-01-02T15:04:05",
}

// ParseTime reads an imported date or time, as Read renders .xlsx date cells
// and as people type them in CSV: 2006-01-02 15:04:05, 2006-01-02 15:04,
// 2006-01-02, the same with / or 年月日, 20060102, or RFC 3339. A value
// without a zone is in loc: the bureau zone for instants, time.UTC for
// calendar dates such as a birth date.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date or time; write it as 2006-01-02 or 2006-01-02 15:04:05", s)
}
