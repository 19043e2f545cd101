package deadlines

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
)

// schedulerLock is the PostgreSQL advisory lock key that lets one app
// instance tick at a time (storage's migration lock is 727001, audit's chain
// lock 727002).
const schedulerLock = 727003

// maxBatches bounds one Tick, so a huge backlog is worked off over several
// ticks instead of one that never ends.
const maxBatches = 100

// TickResult says what one Tick did.
type TickResult struct {
	Overdue   int  // open → overdue
	Escalated int  // overdue → escalated
	Skipped   bool // another instance was ticking; this one did nothing
}

// Tick moves every open deadline whose due time has passed to overdue, and
// every overdue one that is escalate_after past its due time to escalated,
// in batches of e.Batch, each in its own transaction.
//
// Several app instances may tick at once against one database and each due
// deadline still moves exactly once: on PostgreSQL a batch first takes a
// transaction-scoped advisory lock and gives up the tick if another instance
// holds it; on SQLite transactions begin IMMEDIATE, so the write lock
// serialises them. Beyond that, every UPDATE is conditional on the state it
// moves from, so even two batches that did run together could not both move
// one deadline.
func (e *Engine) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	for range maxBatches {
		var overdue, escalated []int64
		skipped := false
		err := e.db.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			if e.db.Dialect == storage.Postgres {
				var got bool
				if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock($1)", schedulerLock).Scan(&got); err != nil {
					return fmt.Errorf("deadlines: scheduler lock: %w", err)
				}
				if !got {
					skipped = true
					return nil
				}
			}
			overdue, escalated, err = e.tickBatch(ctx, tx)
			return err
		})
		if err != nil {
			return res, err
		}
		if skipped {
			res.Skipped = true
			return res, nil
		}
		res.Overdue += len(overdue)
		res.Escalated += len(escalated)
		if len(overdue) < e.Batch && len(escalated) < e.Batch {
			break
		}
	}
	return res, nil
}

// tickBatch makes one batch of both transitions inside tx.
func (e *Engine) tickBatch(ctx context.Context, tx *sql.Tx) (overdue, escalated []int64, err error) {
	now := e.now()
	after, err := e.settings.With(tx).Duration(ctx, settings.EscalateAfter)
	if err != nil {
		return nil, nil, err
	}
	at := storage.Millis(now)
	overdue, err = updateIDs(ctx, tx, `UPDATE deadlines SET state = 'overdue', overdue_at = $1, updated_at = $1
		WHERE id IN (SELECT id FROM deadlines WHERE state = 'open' AND due_at < $1 ORDER BY due_at LIMIT $2)
		AND state = 'open' RETURNING id`, at, e.Batch)
	if err != nil {
		return nil, nil, fmt.Errorf("deadlines: mark overdue: %w", err)
	}
	if err := e.recordEvents(ctx, tx, overdue, Open, Overdue, at); err != nil {
		return nil, nil, err
	}
	// due_at + escalate_after < now, written so the index on due_at serves it.
	escalated, err = updateIDs(ctx, tx, `UPDATE deadlines SET state = 'escalated', escalated_at = $1, updated_at = $1
		WHERE id IN (SELECT id FROM deadlines WHERE state = 'overdue' AND due_at < $2 ORDER BY due_at LIMIT $3)
		AND state = 'overdue' RETURNING id`, at, storage.Millis(now.Add(-after)), e.Batch)
	if err != nil {
		return nil, nil, fmt.Errorf("deadlines: escalate: %w", err)
	}
	if err := e.recordEvents(ctx, tx, escalated, Overdue, Escalated, at); err != nil {
		return nil, nil, err
	}
	return overdue, escalated, nil
}

// Run ticks now and then every interval until ctx is done. A failed tick is
// logged and tried again at the next interval; the scheduler never stops on
// its own.
func (e *Engine) Run(ctx context.Context, every time.Duration) {
	log := e.Log
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		tctx, cancel := context.WithTimeout(ctx, max(every, time.Minute))
		res, err := e.Tick(tctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("deadline scheduler tick failed", "err", err)
		case res.Overdue > 0 || res.Escalated > 0:
			log.Info("deadlines moved", "overdue", res.Overdue, "escalated", res.Escalated)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
