package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
)

// SQLite lets one connection write at a time. A connection that wants to
// write while another holds the lock polls for it (busy_timeout), sleeping
// up to 100 ms between tries, so under a steady writer — the registration
// group commit on a testing day — a request's small write (a token's
// last-used time, a session touch, an audited search) could wait seconds
// and then fail with SQLITE_BUSY. Writers of this process therefore queue
// on one lock in Go, first come first served, before SQLite's lock: write
// transactions (every transaction: they begin IMMEDIATE) and Exec calls
// outside a transaction. Other processes on the same file (a CLI import
// while serving) still meet SQLite's own lock and busy_timeout.
//
// A writer queues while holding its pooled connection, so code holding the
// lock (inside a transaction) must not wait for a second connection from
// the pool (use the transaction, not the DB): with the pool taken by
// queued writers it would wait until writeLockWait fails them.

// writeLockWait is how long a writer waits in the queue before failing,
// as busy_timeout bounds the wait for SQLite's lock (a variable for tests).
var writeLockWait = 10 * time.Second

// ErrWriteBusy is the cause of the error a writer gets after waiting
// writeLockWait for the lock: apperr.Unavailable, so an API client is told
// to retry (503 with Retry-After).
var ErrWriteBusy = errors.New("storage: the database stayed busy with other writes")

// checkHolder makes test binaries enforce the rule above. When writers
// queued for the lock hold every pooled connection, a lock holder asking
// the pool for another waits until they give up (writeLockWait), and every
// write stalls for those seconds. A load test met it: the filer refreshed a
// cached sampling point through the pool inside its transaction while the
// 64 API tokens of the load queued their minutely last-used writes. The
// pool is seldom exhausted, so tests would not show it; instead, in a test
// binary the lock remembers the goroutine holding it, and a connection
// handed to that goroutine panics with the stack of the offending call.
var checkHolder = testing.Testing()

// writeLock is the process's queue of SQLite writers (a one-slot channel:
// waiting senders are served in order).
type writeLock struct {
	slot   chan struct{}
	holder atomic.Int64 // the holding goroutine's id, when checkHolder
}

func newWriteLock() *writeLock { return &writeLock{slot: make(chan struct{}, 1)} }

func (l *writeLock) acquire(ctx context.Context) error {
	select {
	case l.slot <- struct{}{}:
		l.held()
		return nil
	default:
	}
	t := time.NewTimer(writeLockWait)
	defer t.Stop()
	select {
	case l.slot <- struct{}{}:
		l.held()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return apperr.Wrap(ErrWriteBusy, apperr.Unavailable, "the server is busy; retry shortly")
	}
}

func (l *writeLock) held() {
	if checkHolder {
		l.holder.Store(goroutineID())
	}
}

func (l *writeLock) release() {
	if checkHolder {
		l.holder.Store(0)
	}
	<-l.slot
}

// checkOut is called as the pool hands a connection to the calling
// goroutine; see checkHolder.
func (l *writeLock) checkOut() {
	if checkHolder && l.holder.Load() == goroutineID() {
		panic("storage: a goroutine holding the SQLite write lock took a second connection from the pool; " +
			"inside a transaction, query through the transaction")
	}
}

// goroutineID reads the calling goroutine's id from its stack header
// ("goroutine 42 [running]:"), for checkHolder alone.
func goroutineID() int64 {
	var buf [40]byte
	n := runtime.Stack(buf[:], false)
	s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
	id, _ := strconv.ParseInt(s[:max(strings.IndexByte(s, ' '), 0)], 10, 64)
	return id
}

// sqliteConnector opens SQLite connections that share a writeLock.
type sqliteConnector struct {
	driver.Connector
	lock *writeLock
}

func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.lock.checkOut()
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteDriverConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("storage: sqlite connection %T lacks context methods", conn)
	}
	return &sqliteConn{sqliteDriverConn: inner, lock: c.lock}, nil
}

// sqliteDriverConn is what the modernc connection offers and database/sql
// uses; sqliteConn passes all of it through.
type sqliteDriverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// sqliteConn takes the write lock for its transactions and for Exec calls
// outside one. database/sql uses a connection from one goroutine at a time.
type sqliteConn struct {
	sqliteDriverConn
	lock *writeLock
	inTx bool
	tx   *sqliteTx // the open transaction, while inTx
}

// Close releases the lock should the connection close inside a
// transaction (database/sql rolls back first; this is a safety net).
func (c *sqliteConn) Close() error {
	if c.inTx {
		c.tx.end()
	}
	return c.sqliteDriverConn.Close()
}

// ResetSession is called as the pool hands the connection out again.
func (c *sqliteConn) ResetSession(ctx context.Context) error {
	c.lock.checkOut()
	return c.sqliteDriverConn.ResetSession(ctx)
}

func (c *sqliteConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *sqliteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.ReadOnly {
		return c.sqliteDriverConn.BeginTx(ctx, opts)
	}
	if err := c.lock.acquire(ctx); err != nil {
		return nil, err
	}
	tx, err := c.sqliteDriverConn.BeginTx(ctx, opts)
	if err != nil {
		c.lock.release()
		return nil, err
	}
	c.inTx = true
	c.tx = &sqliteTx{Tx: tx, conn: c}
	return c.tx, nil
}

func (c *sqliteConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.inTx {
		return c.sqliteDriverConn.ExecContext(ctx, query, args)
	}
	if err := c.lock.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.lock.release()
	return c.sqliteDriverConn.ExecContext(ctx, query, args)
}

// sqliteTx releases the write lock when it ends, however it ends.
type sqliteTx struct {
	driver.Tx
	conn *sqliteConn
	once sync.Once
}

func (t *sqliteTx) Commit() error {
	defer t.end()
	return t.Tx.Commit()
}

func (t *sqliteTx) Rollback() error {
	defer t.end()
	return t.Tx.Rollback()
}

func (t *sqliteTx) end() {
	t.once.Do(func() {
		t.conn.inTx, t.conn.tx = false, nil
		t.conn.lock.release()
	})
}
