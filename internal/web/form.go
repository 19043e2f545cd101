package web

import (
	"errors"
	"net/http"

	"github.com/shaobing/shaobing/internal/apperr"
)

// MaxRequestBody caps every request body (imports of large files included);
// Observe applies it before anything reads the body.
const MaxRequestBody = 128 << 20

// MaxFormBody is the limit on an ordinary (non-upload) form post.
const MaxFormBody = 256 << 10

// ParseForm parses a form post of at most max bytes (MaxFormBody when max is
// 0), turning an oversize or malformed body into a 413 or 400 that names the
// problem. A form already parsed (the CSRF check reads the token first) is
// not read again.
func ParseForm(w http.ResponseWriter, r *http.Request, max int64) error {
	if r.PostForm != nil {
		return nil
	}
	if max <= 0 {
		max = MaxFormBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.New(apperr.TooLarge, "the form is larger than %d bytes", max)
		}
		return apperr.Wrap(err, apperr.BadRequest, "malformed form")
	}
	return nil
}
