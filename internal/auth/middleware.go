package auth

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
)

// errCSRF answers a cookie-authenticated write without the session's token.
var errCSRF = apperr.New(apperr.Forbidden, "the form's security token is missing or stale; reload the page and try again")

// Middleware says who is asking. On /api/ paths an "Authorization: Bearer
// sbt_…" token names the caller (a bad token is a 401 at once); elsewhere,
// and on the API without a token, the session cookie does. Bearer tokens
// never work on browser pages. Cookie-authenticated writes must carry the
// session's CSRF token (form field csrf_token or header X-CSRF-Token).
// Requests with neither go on anonymous: handlers ask web.User, which fails
// closed. It runs inside audit's middleware, whose client address
// (audit.ClientAddr) the sign-in throttle and the session rows use.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		isAPI := strings.HasPrefix(r.URL.Path, "/api/")
		if h := r.Header.Get("Authorization"); isAPI && h != "" {
			scheme, secret, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "Bearer") {
				s.unauthorized(w, r, errNoSession)
				return
			}
			p, err := s.tokenPrincipal(ctx, strings.TrimSpace(secret))
			if err != nil {
				s.unauthorized(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(scope.WithPrincipal(ctx, p)))
			return
		}
		c, err := r.Cookie(SessionCookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		sess, err := s.session(ctx, c.Value)
		if apperr.Is(err, apperr.Unauthorized) {
			// The session ended: forget the cookie and go on anonymous, so
			// pages send the visitor to the login form.
			s.clearCookie(w, SessionCookie)
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			s.fail(w, r, isAPI, err)
			return
		}
		ctx = web.WithCSRFToken(scope.WithPrincipal(ctx, sess.principal), sess.csrf)
		r = r.WithContext(ctx)
		if !safeMethod(r.Method) {
			got, err := csrfToken(w, r)
			if err != nil {
				s.fail(w, r, isAPI, err)
				return
			}
			if !validCSRF(got, sess.csrf) {
				s.fail(w, r, isAPI, errCSRF)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// uploadMemory is how much of a multipart upload the CSRF check keeps in
// memory; larger files spill to temporary files.
const uploadMemory = 8 << 20

// csrfToken returns the request's CSRF token: the X-CSRF-Token header, read
// first so JSON and htmx requests need not parse a body, else the form
// field csrf_token. Parsing the form here is the first read of the body, so
// it applies the shell's limits: handlers' own ParseForm calls skip a form
// already parsed, and Go's defaults would read up to 10 MB of a urlencoded
// body.
func csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if got := r.Header.Get("X-CSRF-Token"); got != "" {
		return got, nil
	}
	media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch media {
	case "application/x-www-form-urlencoded":
		if err := web.ParseForm(w, r, web.MaxFormBody); err != nil {
			return "", err
		}
	case "multipart/form-data":
		// An upload (the people import). Observe has already capped the
		// body at web.MaxRequestBody.
		if err := r.ParseMultipartForm(uploadMemory); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return "", apperr.New(apperr.TooLarge, "the upload is larger than %d bytes", tooBig.Limit)
			}
			return "", apperr.Wrap(err, apperr.BadRequest, "malformed form")
		}
	default:
		return "", nil // no form to carry a token
	}
	return r.PostForm.Get("csrf_token"), nil
}

// validCSRF compares the request's token with want in constant time.
func validCSRF(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Service) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="shaobing"`)
	s.shell.Problem(w, r, err)
}

// fail answers an error from the middleware as a problem document (API) or
// an error page (browser). A CSRF failure gets its own explanation rather
// than the generic "your role does not allow this".
func (s *Service) fail(w http.ResponseWriter, r *http.Request, isAPI bool, err error) {
	if isAPI {
		s.shell.Problem(w, r, err)
		return
	}
	if err != errCSRF {
		s.shell.Error(w, r, err)
		return
	}
	p := s.shell.NewPage(r, nil)
	p.Data = map[string]any{"Status": http.StatusForbidden, "Message": p.T("auth.csrf_failed")}
	s.shell.RenderStatus(w, r, http.StatusForbidden, "error", p)
}

func (s *Service) setCookie(w http.ResponseWriter, name, value string, maxAge int, site http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.shell.Secure, SameSite: site})
}

func (s *Service) clearCookie(w http.ResponseWriter, name string) {
	site := http.SameSiteLaxMode
	if name == LoginCSRFCookie {
		site = http.SameSiteStrictMode
	}
	s.setCookie(w, name, "", -1, site)
}
