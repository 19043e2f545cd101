package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestShed(t *testing.T) {
	s := testShell(t)
	m := NewMetrics(prometheus.NewRegistry())
	entered := make(chan string, 10)
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.URL.Path
		<-release
		w.WriteHeader(http.StatusOK)
	})
	const wait = 100 * time.Millisecond
	h := s.Shed(m, 2, wait, slow)
	serve := func(ctx context.Context, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil).WithContext(ctx))
		return w
	}
	ctx := context.Background()

	// Fill both slots.
	busy := make(chan *httptest.ResponseRecorder, 2)
	for range 2 {
		go func() { busy <- serve(ctx, "/api/v1/slow") }()
		<-entered
	}

	t.Run("api request over the limit gets 503 problem within the wait", func(t *testing.T) {
		start := time.Now()
		w := serve(ctx, "/api/v1/people")
		took := time.Since(start)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
		}
		if took < wait || took > wait+time.Second {
			t.Errorf("answered after %v, want about %v", took, wait)
		}
		var doc ProblemDoc
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("content type %q", ct)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.Code != "unavailable" || doc.Status != 503 {
			t.Errorf("problem %+v, %v", doc, err)
		}
	})
	t.Run("page request over the limit gets a small 503 page", func(t *testing.T) {
		w := serve(ctx, "/people")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(w.Body.String(), "服务繁忙") {
			t.Errorf("content type %q, body %q", ct, w.Body.String())
		}
	})
	t.Run("client that leaves is let go at once", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		start := time.Now()
		serve(cctx, "/api/v1/people")
		if took := time.Since(start); took > wait/2 {
			t.Errorf("held a departed client for %v", took)
		}
	})
	var metric dto.Metric
	if err := m.shed.Write(&metric); err != nil {
		t.Fatal(err)
	}
	if got := metric.GetCounter().GetValue(); got != 3 {
		t.Errorf("shaobing_http_shed_total = %v, want 3", got)
	}

	t.Run("a waiting request gets a slot freed within the wait", func(t *testing.T) {
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- serve(ctx, "/api/v1/waits") }()
		time.Sleep(wait / 4)
		release <- struct{}{} // one of the two busy requests finishes
		if w := <-busy; w.Code != http.StatusOK {
			t.Fatalf("busy request: %d", w.Code)
		}
		if p := <-entered; p != "/api/v1/waits" {
			t.Fatalf("entered %s", p)
		}
		close(release)
		if w := <-done; w.Code != http.StatusOK {
			t.Errorf("waiting request: %d, want 200", w.Code)
		}
		if w := <-busy; w.Code != http.StatusOK {
			t.Errorf("busy request: %d", w.Code)
		}
	})
	t.Run("slots are free again afterwards", func(t *testing.T) {
		for range 3 {
			go func() { <-entered }()
			if w := serve(ctx, "/api/v1/people"); w.Code != http.StatusOK {
				t.Errorf("status %d, want 200", w.Code)
			}
		}
	})
}
