package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
)

// MaxJSONBody is the default limit on a JSON request body.
const MaxJSONBody = 1 << 20

// DecodeJSON reads exactly one JSON value into dst, rejecting a wrong content
// type, unknown fields, trailing data, wrong types and bodies over max bytes,
// each with an error that names the problem (and the field where there is one).
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, max int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		if mt = strings.TrimSpace(strings.ToLower(mt)); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return apperr.New(apperr.BadRequest, "the body must be application/json, not %s", mt)
		}
	}
	if max <= 0 {
		max = MaxJSONBody
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, max)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := jsonError(err, max); apperr.CodeOf(e) == apperr.TooLarge {
				return e
			}
		}
		return apperr.New(apperr.BadRequest, "the body must hold a single JSON value")
	}
	return nil
}

func jsonError(err error, max int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return apperr.New(apperr.TooLarge, "the body is larger than %d bytes", max)
	case errors.As(err, &syn):
		return apperr.Wrap(err, apperr.BadRequest, "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.BadRequest, "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.BadRequest, "the JSON body ends too early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return &apperr.Error{Code: apperr.Invalid, Message: "invalid input", Fields: []apperr.FieldError{{
			Field: field, Code: "type", Message: fmt.Sprintf("must be a JSON %s", jsonKind(typ.Type.Kind().String())), Args: []any{jsonKind(typ.Type.Kind().String())},
		}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apperr.Error{Code: apperr.BadRequest, Message: "unknown field", Fields: []apperr.FieldError{{
			Field: name, Code: "unknown_field", Message: "this field is not part of the request",
		}}}
	}
	return apperr.Wrap(err, apperr.BadRequest, "malformed JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	default:
		return "number"
	}
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// ProblemDoc is an RFC 9457 problem document with per-field errors.
type ProblemDoc struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Code     string         `json:"code"`
	Errors   []ProblemField `json:"errors,omitempty"`
}

// ProblemField is one bad field of a problem document.
type ProblemField struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Problem writes err as an RFC 9457 problem document. Internal errors say
// only "internal error"; their cause goes to the log.
func (s *Shell) Problem(w http.ResponseWriter, r *http.Request, err error) {
	doc := s.ProblemDoc(r, err)
	if doc.Status == http.StatusTooManyRequests || doc.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(doc.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc)
}

// ProblemDoc returns err as a problem document in the request's language,
// for answers that carry several outcomes (one per item of a batch).
// Internal errors say only "internal error"; their cause goes to the log.
func (s *Shell) ProblemDoc(r *http.Request, err error) ProblemDoc {
	code := apperr.CodeOf(err)
	s.logIfInternal(r.Context(), err)
	lang := locale.FromRequest(r)
	doc := ProblemDoc{
		Type:     "https://shaobing.dev/problems/" + strings.ReplaceAll(string(code), "_", "-"),
		Title:    s.Catalog.T(lang, "error."+string(code)),
		Status:   code.Status(),
		Instance: r.URL.Path,
		Code:     string(code),
	}
	if e := apperr.As(err); e != nil && code != apperr.Internal {
		doc.Detail = e.Message
		for _, f := range e.Fields {
			doc.Errors = append(doc.Errors, ProblemField{Field: f.Field, Code: f.Code, Detail: s.fieldMessage(lang, f)})
		}
	}
	return doc
}

// NextPage trims a list read with one row more than limit (LIMIT limit+1) to
// limit items, and returns the cursor of the next page: the position pos
// gives the last item kept, or "" when there is no next page.
func NextPage[T any](items []T, limit int, pos func(T) any) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, EncodeCursor(pos(items[limit-1]))
}

// EncodeCursor turns a position (the sort key of the last item returned) into
// an opaque cursor string.
func EncodeCursor(pos any) string {
	b, _ := json.Marshal(pos)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor from EncodeCursor into pos; "" leaves pos as is.
func DecodeCursor(s string, pos any) error {
	if s == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err = dec.Decode(pos); err == nil && dec.More() {
			err = errors.New("trailing data")
		}
		if err == nil {
			if _, tokErr := dec.Token(); !errors.Is(tokErr, io.EOF) {
				err = errors.New("trailing data")
			}
		}
	}
	if err != nil {
		return apperr.Field("cursor", "cursor.invalid", "the cursor is not valid; start again without it")
	}
	return nil
}

// Limit reads the "limit" query parameter: def when absent, an error when not
// a number in 1..max.
func Limit(q url.Values, def, max int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", max)
	}
	return n, nil
}

// PathID parses a numeric path value; a malformed ID is simply not found.
func PathID(r *http.Request, name string) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, apperr.NotFoundf("not found")
	}
	return n, nil
}
