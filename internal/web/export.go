package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/tabular"
)

// Export answers a list download (?format=csv|xlsx): the one export path of
// every page and API. name is the file name's stem ("people"; the file is
// people-20260301-0930.csv, stamped in the bureau's time zone), sheet the
// .xlsx worksheet's name (a translated title), cols the header.
//
// rows gets the format asked for (checked before rows is called) and
// calls write once per row. The file starts with the first row (or,
// for an empty list, after rows returns), so rows can check its filters,
// read its first page and record the audit entry first: any error before
// then reaches the caller as usual and Page or API turns it into an error
// page or problem document. An error once bytes have gone out cannot be
// reported any more; it is logged and the download ends short (a cut .xlsx
// does not open, and the audit entry already says what was asked for).
func (s *Shell) Export(w http.ResponseWriter, r *http.Request, name, sheet string, cols []tabular.Column, rows func(f tabular.Format, write func(row []any) error) error) error {
	f, err := tabular.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	loc := s.Location(ctx)
	out := &countingWriter{w: w}
	var tw *tabular.Writer
	start := func() error {
		h := w.Header()
		h.Set("Content-Type", f.ContentType())
		h.Set("Content-Disposition", attachment(name+"-"+s.now().In(loc).Format("20060102-1504")+f.Ext()))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		var err error
		tw, err = tabular.NewWriter(out, f, sheet, cols, loc)
		return err
	}
	err = rows(f, func(row []any) error {
		if tw == nil {
			if err := start(); err != nil {
				return err
			}
		}
		return tw.Write(row)
	})
	if err == nil && tw == nil {
		err = start() // no rows: still a file with its header
	}
	if err == nil {
		err = tw.Close()
		tw = nil
	}
	if err == nil {
		return nil
	}
	sent := out.n > 0
	if tw != nil {
		// Release the temporary files. If nothing went out yet (an .xlsx is
		// assembled at Close), drop what Close writes so the error can be
		// answered; otherwise send what there is and end short.
		out.discard = !sent
		_ = tw.Close()
	}
	if !sent {
		// Nothing sent yet (.xlsx is assembled at Close): answer with the error.
		for _, k := range []string{"Content-Type", "Content-Disposition"} {
			w.Header().Del(k)
		}
		return err
	}
	s.Log.ErrorContext(ctx, "export interrupted", "export", name, "err", err, "request_id", RequestID(ctx))
	return nil
}

// countingWriter counts what went to the client, to tell whether an error
// can still be answered.
type countingWriter struct {
	w       io.Writer
	n       int64
	discard bool // after a failure: swallow what a closing writer flushes
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.discard {
		return len(p), nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// attachment returns a Content-Disposition header for a download named
// filename (RFC 6266): an ASCII fallback for old clients and the exact name
// as UTF-8 in filename*.
func attachment(filename string) string {
	var ascii, ext strings.Builder
	for _, b := range []byte(filename) {
		switch {
		case b >= 0x80 || b < 0x20 || b == '"' || b == '\\' || b == 0x7f:
			if b < 0x80 || b >= 0xc0 { // one _ per character, not per byte
				ascii.WriteByte('_')
			}
		default:
			ascii.WriteByte(b)
		}
		if isAttrChar(b) {
			ext.WriteByte(b)
		} else {
			const hex = "0123456789ABCDEF"
			ext.Write([]byte{'%', hex[b>>4], hex[b&15]})
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar reports whether b may stand unescaped in an RFC 8187 ext-value.
func isAttrChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}

// ImportBody is the body of an import API request, read through the one
// import path (internal/tabular): its format comes from ?format=, else from
// an .xlsx Content-Type, else it is CSV. Reading beyond max bytes fails;
// TooLarge turns that failure into a 413 naming the limit.
func ImportBody(w http.ResponseWriter, r *http.Request, max int64) (io.Reader, tabular.Format, error) {
	f := tabular.CSV
	if s := r.URL.Query().Get("format"); s != "" {
		var err error
		if f, err = tabular.ParseFormat(s); err != nil {
			return nil, f, err
		}
	} else if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == tabular.XLSX.ContentType() {
		f = tabular.XLSX
	}
	return http.MaxBytesReader(w, r.Body, max), f, nil
}

// TooLarge turns an error from reading a body capped at max bytes (by
// http.MaxBytesReader) into a TooLarge error naming the limit; any other
// error passes unchanged.
func TooLarge(err error, max int64) error {
	var tooBig *http.MaxBytesError
	if apperr.As(err) == nil && errors.As(err, &tooBig) {
		return apperr.New(apperr.TooLarge, "the file is larger than %d bytes", max)
	}
	return err
}
