package storage

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite's WAL is copied back into the database file by a checkpoint. Left
// to itself, SQLite runs it inside the commit that crosses the threshold,
// on the committing connection: the group-commit writer, the one thread
// every registration waits for, would spend a tenth of its time reading
// WAL frames and writing pages back. A background goroutine runs passive
// checkpoints on its own connection instead, so that work overlaps the
// writer's on another core; passive checkpoints never block writers or
// readers. The connections' own automatic checkpoint stays as a backstop,
// at a threshold the background checkpoints keep the WAL under.
const (
	checkpointEvery  = 100 * time.Millisecond
	backstopWALPages = 16384 // 64 MiB of 4 KiB pages
)

// checkpointer runs passive checkpoints until stopped.
type checkpointer struct {
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	copied atomic.Int64 // WAL frames copied back, in total
}

func (db *DB) startCheckpointer() {
	c := &checkpointer{stop: make(chan struct{}), done: make(chan struct{})}
	db.ckpt = c
	go func() {
		defer close(c.done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		var last int64 // frames of the current WAL copied so far
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				// An error (a busy database, a closing pool) only means this
				// round copied nothing; the next one or the backstop will.
				var busy, frames, copied int64
				err := db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
				if err != nil || copied < 0 {
					continue
				}
				if copied < last {
					last = 0 // the WAL restarted from its beginning
				}
				c.copied.Add(copied - last)
				last = copied
			}
		}
	}()
}

// CheckpointedPages returns how many WAL pages have been copied back into
// the database file, as the background checkpoints saw it (0 on
// PostgreSQL), for /metrics.
func (db *DB) CheckpointedPages() int64 {
	if db.ckpt == nil {
		return 0
	}
	return db.ckpt.copied.Load()
}

// Close stops the background checkpoints (SQLite) and closes the database.
func (db *DB) Close() error {
	if c := db.ckpt; c != nil {
		c.once.Do(func() { close(c.stop) })
		<-c.done
	}
	return db.DB.Close()
}
