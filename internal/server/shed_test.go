package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// TestBareRoutesSkipShedding: with the only slot held by a request whose body
// never finishes, an application request is shed (503) while health,
// readiness, metrics and static files still answer.
func TestBareRoutesSkipShedding(t *testing.T) {
	db := storagetest.Open(t, Migrations()...)
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DB: db, Tree: tree, Log: slog.New(slog.DiscardHandler), MaxInFlight: 1, ShedWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s)
	defer srv.Close()

	// Hold the one slot: a sign-in form whose body is still arriving (the
	// login handler reads the form before anything else).
	body, feed := io.Pipe()
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequest("POST", srv.URL+"/login", body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	if _, err := feed.Write([]byte("username=a&pass")); err != nil { // the server has started reading it
		t.Fatal(err)
	}
	defer func() { feed.Close(); <-held }()

	get := func(path string) int {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// Once an application request is shed, the slot is surely held (the
	// sign-in cannot finish before its body does).
	deadline := time.Now().Add(5 * time.Second)
	for get("/api/v1/me") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("an application request was never shed with the only slot held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	asset, err := s.Shell().Assets.Path("app.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", asset} {
		if code := get(path); code != http.StatusOK {
			t.Errorf("%s with the slot held: %d, want 200", path, code)
		}
	}
}
