package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/server"
)

func cmdServe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("serve", stdout)
	addrDef := os.Getenv("SHAOBING_ADDR")
	if addrDef == "" {
		addrDef = "127.0.0.1:8080"
	}
	addr := fs.String("addr", addrDef, "listen address HOST:PORT (env SHAOBING_ADDR)")
	dbURL := dbFlag(fs)
	tlsCert := fs.String("tls-cert", os.Getenv("SHAOBING_TLS_CERT"), "TLS certificate file (env SHAOBING_TLS_CERT)")
	tlsKey := fs.String("tls-key", os.Getenv("SHAOBING_TLS_KEY"), "TLS key file (env SHAOBING_TLS_KEY)")
	trustProxy := fs.Bool("trust-proxy", os.Getenv("SHAOBING_TRUST_PROXY") == "1", "take the client address from X-Forwarded-For (only behind a proxy that sets it; env SHAOBING_TRUST_PROXY=1)")
	behindTLS := fs.Bool("behind-tls-proxy", os.Getenv("SHAOBING_BEHIND_TLS_PROXY") == "1", "a TLS-terminating proxy is in front: mark cookies Secure (env SHAOBING_BEHIND_TLS_PROXY=1)")
	logJSON := fs.Bool("log-json", os.Getenv("SHAOBING_LOG_JSON") == "1", "write logs as JSON (env SHAOBING_LOG_JSON=1)")
	maxInFlightDef := 512
	if v := os.Getenv("SHAOBING_MAX_IN_FLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("SHAOBING_MAX_IN_FLIGHT=%q: want a positive whole number", v)
		}
		maxInFlightDef = n
	}
	maxInFlight := fs.Int("max-in-flight", maxInFlightDef, "requests served at once; beyond it a request waits up to --shed-wait, then gets 503 with Retry-After (env SHAOBING_MAX_IN_FLIGHT)")
	shedWaitDef := 100 * time.Millisecond
	if v := os.Getenv("SHAOBING_SHED_WAIT"); v != "" {
		d, err := parseShedWait(v)
		if err != nil {
			return fmt.Errorf("SHAOBING_SHED_WAIT=%q: %w", v, err)
		}
		shedWaitDef = d
	}
	shedWait := fs.Duration("shed-wait", shedWaitDef, "how long a request beyond --max-in-flight waits for a slot before 503, e.g. 100ms or 1s (env SHAOBING_SHED_WAIT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *maxInFlight <= 0 {
		return fmt.Errorf("--max-in-flight must be positive")
	}
	if err := checkShedWait(*shedWait); err != nil {
		return fmt.Errorf("--shed-wait: %w", err)
	}
	// Log lines are written in batches (logbuffer.go); the deferred flush
	// runs last, after everything else has logged its shutdown.
	logOut := newLogBuffer(os.Stderr, logFlushEvery)
	defer func() { _ = logOut.Flush() }()
	var handler slog.Handler = slog.NewTextHandler(logOut, nil)
	if *logJSON {
		handler = slog.NewJSONHandler(logOut, nil)
	}
	handler = logFlusher{Handler: handler, buf: logOut}
	log := slog.New(handler)

	db, err := openMigrated(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	tree, err := regions.LoadTree()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{DB: db, Tree: tree, Log: log, Secure: *tlsCert != "" || *behindTLS, TrustProxy: *trustProxy,
		MaxInFlight: *maxInFlight, ShedWait: *shedWait})
	if err != nil {
		return err
	}
	// Runs after the HTTP server has stopped and before the database
	// closes: registrations already queued are committed.
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go srv.RunBackground(bgCtx)

	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "database", db.Location)
	fmt.Fprintf(stdout, "shaobing is running at %s://%s\n", scheme, ln.Addr().String())

	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- httpSrv.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- httpSrv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	stopBackground()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// maxShedWait bounds --shed-wait: a request held longer than this is no
// longer shed load but a queue, which is what shedding exists to avoid.
const maxShedWait = 10 * time.Second

// parseShedWait reads a shed wait: a Go duration from 1ms to maxShedWait.
func parseShedWait(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 100ms or 1s")
	}
	return d, checkShedWait(d)
}

// checkShedWait accepts a shed wait from 1ms to maxShedWait.
func checkShedWait(d time.Duration) error {
	if d < time.Millisecond || d > maxShedWait {
		return fmt.Errorf("%v is outside 1ms to %v", d, maxShedWait)
	}
	return nil
}
