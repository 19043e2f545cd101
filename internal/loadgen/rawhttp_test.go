package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is one answer of a scriptedServer.
type scripted struct {
	answer string // written as it is once a request was read
	close  bool   // then the connection is closed
}

// scriptedServer is a hand-written HTTP server: it reads each request with
// net/http's parser, so the raw client's requests must be HTTP/1.1, and
// writes the script's next answer byte for byte. When the script runs
// out, it holds the request unanswered until the client goes.
type scriptedServer struct {
	url string

	mu       sync.Mutex
	script   []scripted
	requests []seenRequest
	conns    []net.Conn
	closed   bool
}

// seenRequest is what a scriptedServer read of a request.
type seenRequest struct {
	conn                                  int // which connection, from 0
	method, uri, host, auth, accept, kind string
	length                                int64
	body                                  string
}

func newScriptedServer(t *testing.T, script ...scripted) *scriptedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{url: "http://" + ln.Addr().String(), script: script}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			n, closed := len(s.conns), s.closed
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			if closed {
				conn.Close()
				continue
			}
			wg.Go(func() { s.serve(conn, n) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *scriptedServer) serve(conn net.Conn, n int) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, seenRequest{conn: n, method: req.Method, uri: req.RequestURI, host: req.Host,
			auth: req.Header.Get("Authorization"), accept: req.Header.Get("Accept"), kind: req.Header.Get("Content-Type"),
			length: req.ContentLength, body: string(body)})
		next, ok := scripted{}, len(s.script) > 0
		if ok {
			next, s.script = s.script[0], s.script[1:]
		}
		s.mu.Unlock()
		if !ok {
			_, _ = io.Copy(io.Discard, br) // until the client closes
			return
		}
		if _, err := io.WriteString(conn, next.answer); err != nil || next.close {
			return
		}
	}
}

// counts returns the connections and the requests the server has seen.
func (s *scriptedServer) counts() (conns, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), len(s.requests)
}

func (s *scriptedServer) seen() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.requests...)
}

func testRawClient(t *testing.T, url string, timeout time.Duration) *rawClient {
	t.Helper()
	target, ok, err := rawTargetOf(url)
	if err != nil || !ok {
		t.Fatalf("rawTargetOf(%q) = %v, %v", url, ok, err)
	}
	c := newRawClient(target, timeout)
	t.Cleanup(c.close)
	return c
}

func keepAll(int) bool { return true }

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestRawClientWritesHTTP11(t *testing.T) {
	srv := newScriptedServer(t, scripted{answer: okAnswer}, scripted{answer: okAnswer})
	c := testRawClient(t, srv.url+"/base", 5*time.Second)
	ctx := context.Background()
	if _, err := c.do(ctx, http.MethodGet, pathMe, "sbt_admin", nil, keepAll); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"client_id":"x"}`)
	if _, err := c.do(ctx, http.MethodPost, pathSpecimen, "sbt_point_1", body, keepAll); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.url, "http://")
	want := []seenRequest{
		{conn: 0, method: "GET", uri: "/base/api/v1/me", host: host, auth: "Bearer sbt_admin", accept: "application/json"},
		{conn: 0, method: "POST", uri: "/base/api/v1/specimens", host: host, auth: "Bearer sbt_point_1", accept: "application/json",
			kind: "application/json", length: int64(len(body)), body: string(body)},
	}
	got := srv.seen()
	if len(got) != len(want) {
		t.Fatalf("server saw %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: server saw %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestRawClientReadsAnswers sends each answer's request on a kept-alive
// connection (a first request came before) and then one more request,
// which must be answered on the same connection or, after a close or a
// failure, on a new one.
func TestRawClientReadsAnswers(t *testing.T) {
	const chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n" +
		"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n"
	tests := []struct {
		name       string
		answer     scripted
		keep       bool
		status     int
		body       string
		retryAfter string
		err        error // what the error must wrap; nil for an answer
		conns      int
	}{
		{name: "content length", answer: scripted{answer: "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello"}, keep: true,
			status: 201, body: "hello", conns: 1},
		{name: "content length dropped", answer: scripted{answer: "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello"},
			status: 201, conns: 1},
		{name: "chunked", answer: scripted{answer: chunked}, keep: true, status: 200, body: "hello0123456789", conns: 1},
		{name: "chunked dropped", answer: scripted{answer: chunked}, status: 200, conns: 1},
		{name: "header names in any case", answer: scripted{answer: "HTTP/1.1 503 Service Unavailable\r\nRETRY-AFTER: 7\r\n" +
			"content-LENGTH: 3\r\n\r\n{}\n"}, keep: true, status: 503, body: "{}\n", retryAfter: "7", conns: 1},
		{name: "interim answer", answer: scripted{answer: "HTTP/1.1 100 Continue\r\n\r\n" + okAnswer}, keep: true,
			status: 200, body: "ok", conns: 1},
		{name: "no content", answer: scripted{answer: "HTTP/1.1 204 No Content\r\n\r\n"}, keep: true, status: 204, conns: 1},
		// The server keeps these connections open: the client must close them.
		{name: "connection close", answer: scripted{answer: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n" +
			"Content-Length: 2\r\n\r\nhi"}, keep: true, status: 200, body: "hi", conns: 2},
		{name: "HTTP/1.0 closes", answer: scripted{answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
			keep: true, status: 200, body: "hi", conns: 2},
		{name: "body until close", answer: scripted{answer: "HTTP/1.1 200 OK\r\n\r\nuntil the end", close: true}, keep: true,
			status: 200, body: "until the end", conns: 2},
		{name: "closed in the body", answer: scripted{answer: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close: true},
			keep: true, err: io.ErrUnexpectedEOF, conns: 2},
		{name: "closed in the dropped body", answer: scripted{answer: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close: true},
			err: io.ErrUnexpectedEOF, conns: 2},
		{name: "closed in a chunk", answer: scripted{answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhalf", close: true},
			keep: true, err: io.ErrUnexpectedEOF, conns: 2},
		{name: "closed in the headers", answer: scripted{answer: "HTTP/1.1 200 OK\r\nContent-Len", close: true},
			err: io.ErrUnexpectedEOF, conns: 2},
		{name: "malformed status line", answer: scripted{answer: "HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n"}, err: errMalformed, conns: 2},
		{name: "not HTTP", answer: scripted{answer: "SSH-2.0-OpenSSH_9.6\r\n"}, err: errMalformed, conns: 2},
		{name: "HTTP/2 status line", answer: scripted{answer: "HTTP/2 200\r\n\r\n"}, err: errMalformed, conns: 2},
		{name: "header without a colon", answer: scripted{answer: "HTTP/1.1 200 OK\r\nno colon\r\n\r\n"}, err: errMalformed, conns: 2},
		{name: "negative content length", answer: scripted{answer: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"}, err: errMalformed, conns: 2},
		{name: "two content lengths", answer: scripted{answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"},
			err: errMalformed, conns: 2},
		{name: "gzip transfer encoding", answer: scripted{answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
			err: errMalformed, conns: 2},
		{name: "bad chunk size", answer: scripted{answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
			err: errMalformed, conns: 2},
		{name: "header line too long", answer: scripted{answer: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\n\r\n"},
			err: errMalformed, conns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptedServer(t, scripted{answer: okAnswer}, tt.answer, scripted{answer: okAnswer})
			c := testRawClient(t, srv.url, 5*time.Second)
			ctx := context.Background()
			if _, err := c.do(ctx, http.MethodGet, pathMe, "t", nil, keepAll); err != nil {
				t.Fatal(err)
			}
			res, err := c.do(ctx, http.MethodGet, pathMe, "t", nil, func(int) bool { return tt.keep })
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %+v, %v; want an error wrapping %v", res, err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case res.status != tt.status || string(res.body) != tt.body || (res.body != nil) != tt.keep || res.retryAfter != tt.retryAfter:
				t.Fatalf("got status %d, body %q (kept %v), Retry-After %q; want %d, %q (kept %v), %q",
					res.status, res.body, res.body != nil, res.retryAfter, tt.status, tt.body, tt.keep, tt.retryAfter)
			}
			// After a failure or an answer that ends the connection, the
			// client lets go of it (sending on it would fail and be resent).
			if held := c.conn != nil; held != (tt.conns == 1) {
				t.Errorf("connection held after the answer: %v, want %v", held, tt.conns == 1)
			}
			res, err = c.do(ctx, http.MethodGet, pathMe, "t", nil, keepAll)
			if err != nil || res.status != 200 || string(res.body) != "ok" {
				t.Fatalf("the next request: %+v, %v", res, err)
			}
			// A failed request is not sent again once part of an answer came.
			if conns, requests := srv.counts(); conns != tt.conns || requests != 3 {
				t.Errorf("%d connections and %d requests, want %d and 3", conns, requests, tt.conns)
			}
		})
	}
}

// TestRawClientResendsOnAConnectionClosedWhileIdle: a server may close a
// kept-alive connection just as a request goes out. Like net/http, the raw
// client then sends the request again on a new connection, but only when
// the connection had answered before and nothing of an answer came.
func TestRawClientResendsOnAConnectionClosedWhileIdle(t *testing.T) {
	tests := []struct {
		name     string
		script   []scripted
		err      error // of the second request
		requests int   // the server saw
		conns    int
	}{
		// The server closes after its answer, without saying so.
		{"closed after an answer", []scripted{{answer: okAnswer, close: true}, {answer: okAnswer}}, nil, 2, 2},
		// It reads the second request and closes without answering.
		{"closed with the request read", []scripted{{answer: okAnswer}, {close: true}, {answer: okAnswer}}, nil, 3, 2},
		// A new connection closed without an answer is a failure.
		{"new connection closed", []scripted{{close: true}, {answer: okAnswer}}, io.ErrUnexpectedEOF, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptedServer(t, tt.script...)
			c := testRawClient(t, srv.url, 5*time.Second)
			ctx := context.Background()
			first, err := c.do(ctx, http.MethodGet, pathMe, "t", nil, keepAll)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %+v, %v; want an error wrapping %v", first, err, tt.err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if res, err := c.do(ctx, http.MethodGet, pathMe, "t", nil, keepAll); err != nil || string(res.body) != "ok" {
					t.Fatalf("the second request: %+v, %v", res, err)
				}
			}
			if conns, requests := srv.counts(); conns != tt.conns || requests != tt.requests {
				t.Errorf("%d connections and %d requests, want %d and %d", conns, requests, tt.conns, tt.requests)
			}
		})
	}
}

// TestRawClientGivesUp: a request unanswered past the timeout, or when its
// context ends, fails at once and is not sent again.
func TestRawClientGivesUp(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // the context ends after this long; 0 never
		err     error
	}{
		{"timeout", 100 * time.Millisecond, 0, os.ErrDeadlineExceeded},
		{"context ends", time.Minute, 100 * time.Millisecond, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptedServer(t, scripted{answer: okAnswer}) // and then no answer
			c := testRawClient(t, srv.url, tt.timeout)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := c.do(ctx, http.MethodGet, pathMe, "t", nil, keepAll); err != nil {
				t.Fatal(err)
			}
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			res, err := c.do(ctx, http.MethodGet, pathMe, "t", nil, keepAll)
			if took := time.Since(start); err == nil || took > 5*time.Second || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("got %+v, %v after %v; want an error (%v) after about 100ms", res, err, took, tt.err)
			}
			if conns, requests := srv.counts(); conns != 1 || requests != 2 {
				t.Errorf("%d connections and %d requests, want 1 and 2", conns, requests)
			}
		})
	}
}

func TestRawTargetOf(t *testing.T) {
	tests := []struct {
		url     string
		want    rawTarget
		ok      bool
		wantErr bool
	}{
		{"http://127.0.0.1:8080", rawTarget{addr: "127.0.0.1:8080", host: "127.0.0.1:8080"}, true, false},
		{"http://example.org/shaobing", rawTarget{addr: "example.org:80", host: "example.org", prefix: "/shaobing"}, true, false},
		{"http://[::1]:9000", rawTarget{addr: "[::1]:9000", host: "[::1]:9000"}, true, false},
		{"https://example.org", rawTarget{}, false, false}, // net/http speaks TLS
		{"http://user:secret@example.org", rawTarget{}, false, true},
		{"http://example.org?x=1", rawTarget{}, false, true},
		{"http://", rawTarget{}, false, true},
	}
	for _, tt := range tests {
		got, ok, err := rawTargetOf(tt.url)
		if got != tt.want || ok != tt.ok || (err != nil) != tt.wantErr {
			t.Errorf("rawTargetOf(%q) = %+v, %v, %v; want %+v, %v, error %v", tt.url, got, ok, err, tt.want, tt.ok, tt.wantErr)
		}
	}
}

// testLoadClient is a load client of either kind for url, as Run makes them.
func testLoadClient(t *testing.T, url, httpClient string) *loadClient {
	t.Helper()
	r := &runner{cfg: Config{URL: url, Timeout: 5 * time.Second}, client: &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}}
	t.Cleanup(r.client.CloseIdleConnections)
	if httpClient == "raw" {
		target, _, err := rawTargetOf(url)
		if err != nil {
			t.Fatal(err)
		}
		r.raw = &target
	}
	c := r.newClient()
	t.Cleanup(c.close)
	return c
}

func openPhase() *phase {
	now := time.Now()
	return &phase{from: now.Add(-time.Hour), to: now.Add(time.Hour)}
}

// TestSendRecordsTransportErrors: whichever client it goes through, an
// answer cut short or malformed is a transport error (status 0, retried
// after transportBackoff), and the next request gets through.
func TestSendRecordsTransportErrors(t *testing.T) {
	eachHTTPClient(t, func(t *testing.T, httpClient string) {
		srv := newScriptedServer(t,
			scripted{answer: okAnswer},
			scripted{answer: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close: true},
			scripted{answer: "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"},
			scripted{answer: "HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 15\r\n\r\n{\"title\":\"bad\"}"},
			scripted{answer: "HTTP/1.1 OK\r\n\r\n"},
			scripted{answer: "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"},
		)
		c := testLoadClient(t, srv.url, httpClient)
		ph := openPhase()
		ctx := context.Background()
		body := []byte(`{}`)
		wants := []struct {
			status     int
			retryAfter time.Duration
		}{{200, time.Second}, {0, transportBackoff}, {503, 7 * time.Second}, {422, 0}, {0, transportBackoff}, {201, 0}}
		for i, want := range wants {
			a := c.send(ctx, ph, http.MethodPost, pathSpecimen, "t", body, false)
			if a.status != want.status || a.retryAfter != want.retryAfter {
				t.Errorf("request %d: status %d, Retry-After %v; want %d, %v", i, a.status, a.retryAfter, want.status, want.retryAfter)
			}
		}
		res := ph.result("test", time.Now())
		if res.TransportErrors != 2 || res.Unexpected != 3 || statusList(res.Statuses) != "200 ×1, 201 ×1, 422 ×1, 503 ×1" {
			t.Errorf("%d transport errors, %d unexpected, statuses %s; want 2, 3 and one each of 200, 201, 422, 503",
				res.TransportErrors, res.Unexpected, statusList(res.Statuses))
		}
		if len(res.Examples) != 3 || res.Examples[1] != `422 POST /api/v1/specimens: {"title":"bad"}` {
			t.Errorf("examples %q", res.Examples)
		}
	})
}

// TestSendThroughAGoServer sends to a net/http server as the real one is:
// a long batch answer comes chunked, a shed one with Retry-After, and an
// answer with Connection: close makes the next request dial again.
func TestSendThroughAGoServer(t *testing.T) {
	long := `{"results":[` + strings.Repeat(`{"client_id":"0190a6b2-0000-7000-8000-000000000000","status":201},`, 100) + `{}]}`
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/specimens/batch", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "headers", http.StatusBadRequest)
			return
		}
		// Several writes past the server's buffer: a chunked answer.
		for i := 0; i < len(long); i += 1000 {
			io.WriteString(w, long[i:min(i+1000, len(long))])
		}
	})
	mux.HandleFunc("POST /api/v1/specimens", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("close") {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, `{"user_id":1}`)
	})
	srv := httptest.NewUnstartedServer(mux)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	// The batch answer really is chunked.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+pathBatch, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("the batch answer is %s, transfer encoding %q; want chunked", resp.Status, resp.TransferEncoding)
	}
	http.DefaultClient.CloseIdleConnections()
	eachHTTPClient(t, func(t *testing.T, httpClient string) {
		conns.Store(0)
		c := testLoadClient(t, srv.URL, httpClient)
		ph := openPhase()
		ctx := context.Background()
		steps := []struct {
			method, path string
			body         []byte
			wantBody     bool
			status       int
			retryAfter   time.Duration
			answer       string
		}{
			{http.MethodGet, pathMe, nil, false, 200, time.Second, ""},
			{http.MethodPost, pathBatch, []byte(`{"specimens":[]}`), true, 200, time.Second, long},
			{http.MethodPost, pathBatch, []byte(`{"specimens":[]}`), false, 200, time.Second, ""},
			{http.MethodPost, pathSpecimen, []byte(`{}`), false, 503, 7 * time.Second, ""},
			{http.MethodGet, pathMe + "?close=1", nil, true, 200, time.Second, `{"user_id":1}`},
			{http.MethodGet, pathMe, nil, false, 200, time.Second, ""},
		}
		for i, s := range steps {
			a := c.send(ctx, ph, s.method, s.path, "t", s.body, s.wantBody)
			if a.status != s.status || a.retryAfter != s.retryAfter || string(a.body) != s.answer {
				t.Errorf("request %d (%s %s): status %d, Retry-After %v, %d bytes; want %d, %v, %d bytes",
					i, s.method, s.path, a.status, a.retryAfter, len(a.body), s.status, s.retryAfter, len(s.answer))
			}
		}
		if res := ph.result("test", time.Now()); res.Unexpected != 0 {
			t.Errorf("unexpected: %q", res.Examples)
		}
		// One connection until the server closed it, then one more.
		if n := conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
}
