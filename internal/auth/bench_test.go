package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// benchService is a Service on a fresh database with one sampler, on the
// real clock: the benchmarks measure what a server does under load.
func benchService(b *testing.B) (*Service, User) {
	b.Helper()
	tree, err := loadTree()
	if err != nil {
		b.Fatal(err)
	}
	db := storagetest.Open(b, regions.Migrations, audit.Migrations, Migrations)
	svc := New(db, tree, newShell(b), time.Now, Options{Hash: fastHash})
	u, err := svc.CreateUser(sys(), NewUser{Username: "sampler.a", Password: password, Roles: []scope.Role{scope.Sampler}, RegionCode: townshipA})
	if err != nil {
		b.Fatal(err)
	}
	return svc, u
}

// benchMiddleware runs POST /api/v1/specimens requests through the
// Middleware in parallel, after one warm-up request, and fails on any that
// is not authenticated. Each goroutine reuses one request (the Middleware
// does not change it) so that the numbers are the Middleware's, not
// httptest's.
func benchMiddleware(b *testing.B, svc *Service, prepare func(*http.Request)) {
	h := svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := scope.FromContext(r.Context()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	newRequest := func() *http.Request {
		req := httptest.NewRequest("POST", "/api/v1/specimens", nil)
		prepare(req)
		return req
	}
	warm := httptest.NewRecorder()
	if h.ServeHTTP(warm, newRequest()); warm.Code != http.StatusOK {
		b.Fatalf("warm-up request = %d", warm.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, w := newRequest(), &statusWriter{header: http.Header{}}
		for pb.Next() {
			if h.ServeHTTP(w, req); w.status != 0 {
				b.Errorf("request = %d", w.status)
				return
			}
		}
	})
}

// statusWriter is a ResponseWriter that keeps only the status written.
type statusWriter struct {
	header http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.header }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusWriter) WriteHeader(code int)        { w.status = code }

func BenchmarkTokenAuth(b *testing.B) {
	svc, u := benchService(b)
	_, secret, err := svc.CreateToken(as(principal(u)), u.ID, "app", time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	benchMiddleware(b, svc, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) })
}

func BenchmarkSessionAuth(b *testing.B) {
	svc, _ := benchService(b)
	in, err := svc.Login(context.Background(), Attempt{Username: "sampler.a", Password: password})
	if err != nil {
		b.Fatal(err)
	}
	sess, err := svc.session(context.Background(), in.Session)
	if err != nil {
		b.Fatal(err)
	}
	benchMiddleware(b, svc, func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: in.Session})
		r.Header.Set("X-CSRF-Token", sess.csrf)
	})
}
