package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer the flush timer and the test share.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedBuffer) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// TestLogBufferBatchesInfoLines: info lines wait and go out together in one
// write; a warning goes out at once with the lines before it, in order.
func TestLogBufferBatchesInfoLines(t *testing.T) {
	out := &lockedBuffer{}
	buf := newLogBuffer(out, time.Hour)
	log := slog.New(logFlusher{Handler: slog.NewTextHandler(buf, nil), buf: buf})
	for i := range 100 {
		log.Info("http", "n", i)
	}
	if got := out.String(); got != "" {
		t.Fatalf("info lines written before the flush: %q", got)
	}
	log.Warn("shed")
	got := out.String()
	if out.Writes() != 1 || strings.Count(got, "\n") != 101 {
		t.Fatalf("a warning after 100 info lines: %d writes, %d lines; want 1 write of 101 lines", out.Writes(), strings.Count(got, "\n"))
	}
	if !strings.Contains(got, "n=0\n") || !strings.HasSuffix(got, "msg=shed\n") || strings.Index(got, "n=99\n") > strings.Index(got, "msg=shed") {
		t.Errorf("lines out of order:\n%s", got)
	}
}

// TestLogBufferFlushesInTime: a lone info line is written within the flush
// interval.
func TestLogBufferFlushesInTime(t *testing.T) {
	out := &lockedBuffer{}
	buf := newLogBuffer(out, logFlushEvery)
	slog.New(logFlusher{Handler: slog.NewTextHandler(buf, nil), buf: buf}).Info("later")
	deadline := time.Now().Add(100 * logFlushEvery)
	for !strings.Contains(out.String(), "msg=later") {
		if time.Now().After(deadline) {
			t.Fatalf("an info line was still buffered %v after it was logged", 100*logFlushEvery)
		}
		time.Sleep(logFlushEvery / 10)
	}
}

// TestLogBufferWritesWhenFull: the buffer never holds more than
// logBufferSize; a record larger than that is written through.
func TestLogBufferWritesWhenFull(t *testing.T) {
	out := &lockedBuffer{}
	buf := newLogBuffer(out, time.Hour)
	line := []byte(strings.Repeat("x", 1000) + "\n")
	n := 2 * logBufferSize / len(line)
	for range n {
		if _, err := buf.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if w := out.Writes(); w < 1 || len(out.String()) < logBufferSize-len(line) {
		t.Fatalf("%d lines of %d bytes: %d writes of %d bytes; want the full buffer written", n, len(line), w, len(out.String()))
	}
	big := bytes.Repeat([]byte("y"), logBufferSize+1)
	if _, err := buf.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := buf.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); len(got) != n*len(line)+len(big) || !strings.HasSuffix(got, string(big)) {
		t.Errorf("wrote %d bytes; want %d, the large record last", len(got), n*len(line)+len(big))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestLogBufferReportsWriteErrors: a failed write of buffered lines, even by
// the timed flush, is returned by the next Flush, once.
func TestLogBufferReportsWriteErrors(t *testing.T) {
	buf := newLogBuffer(failingWriter{}, time.Millisecond)
	h := logFlusher{Handler: slog.NewTextHandler(buf, nil), buf: buf}
	slog.New(h).Info("lost")
	time.Sleep(20 * time.Millisecond) // the timed flush fails first and keeps the error
	if err := buf.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush after a failed write: %v; want disk full", err)
	}
	if err := buf.Flush(); err != nil {
		t.Errorf("a second Flush: %v; want nil (the error was reported)", err)
	}
}
