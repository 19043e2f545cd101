package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The server writes one access-log line a request. Written straight to
// stderr that is one write(2) a request: under the registration load test
// 5-7% of the server's CPU went to the log, most of it that system call.
// logBuffer gathers lines and writes them together, at most logFlushEvery
// after the first one waits and whenever logBufferSize bytes wait;
// warnings and errors are written at once with everything before them
// (logFlusher), and so is the rest when the server stops. A process killed
// outright loses at most logFlushEvery of info lines; nothing else in the
// product depends on them (the audit log is in the database).
const (
	logFlushEvery = 100 * time.Millisecond
	logBufferSize = 64 << 10
)

type logBuffer struct {
	mu      sync.Mutex
	w       io.Writer
	every   time.Duration
	buf     []byte
	pending bool  // a timed flush is scheduled
	err     error // the first write error not yet returned by Flush
}

// newLogBuffer buffers writes to w for at most every (logFlushEvery in the
// server).
func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	return &logBuffer{w: w, every: every, buf: make([]byte, 0, logBufferSize)}
}

// Write keeps p (one log record, as slog's handlers write them) for the
// next flush.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > logBufferSize {
		b.flushLocked()
	}
	if len(p) >= logBufferSize {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if !b.pending {
		b.pending = true
		time.AfterFunc(b.every, b.flushTimed)
	}
	return len(p), nil
}

// flushTimed is the timed flush. A write error waits for the next Flush,
// whose caller can report it.
func (b *logBuffer) flushTimed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.pending = false
}

// Flush writes what waits. It returns the first write error seen since the
// last Flush (a buffered line's error cannot reach its logger).
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	err := b.err
	b.err = nil
	return err
}

func (b *logBuffer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	b.buf = b.buf[:0]
}

// logFlusher flushes its buffer after every record at or above Warn, so a
// warning or an error is on stderr when its logger returns.
type logFlusher struct {
	slog.Handler
	buf *logBuffer
}

func (h logFlusher) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.buf.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h logFlusher) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logFlusher{Handler: h.Handler.WithAttrs(attrs), buf: h.buf}
}

func (h logFlusher) WithGroup(name string) slog.Handler {
	return logFlusher{Handler: h.Handler.WithGroup(name), buf: h.buf}
}
