package audit

import (
	"context"
	"fmt"
)

// VerifyReport is the result of walking the chain.
type VerifyReport struct {
	// Entries is how many entries were read.
	Entries int64 `json:"entries"`
	// FirstBad is the id of the first entry that breaks the chain, 0 if none.
	FirstBad int64 `json:"first_bad"`
	// Reason says how it breaks ("" when the chain is intact).
	Reason string `json:"reason,omitempty"`
	// LastID and LastHash are the chain head. Writing them down elsewhere
	// (a printed report, another system) anchors the chain: rows rewritten
	// wholesale with freshly computed hashes no longer end in that hash.
	LastID   int64  `json:"last_id"`
	LastHash string `json:"last_hash"`
}

// OK reports whether the chain is intact.
func (r VerifyReport) OK() bool { return r.FirstBad == 0 }

// Verify walks the whole chain in id order and reports the first entry that
// breaks it: a missing id (a removed entry), a prev_hash that is not the
// previous entry's hash (a removed, re-ordered or forged entry) or a hash
// that does not match the entry's fields (a changed entry).
func (l *Log) Verify(ctx context.Context) (VerifyReport, error) {
	rep := VerifyReport{LastHash: GenesisHash}
	rows, err := l.db.QueryContext(ctx, "SELECT "+selectColumns+" FROM audit_log ORDER BY id")
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var r row
	for rows.Next() {
		if err := scanRow(rows, &r); err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		rep.Entries++
		if rep.FirstBad == 0 {
			if reason := check(&r, rep.LastID, rep.LastHash); reason != "" {
				rep.FirstBad, rep.Reason = r.ID, reason
			}
		}
		rep.LastID, rep.LastHash = r.ID, r.Hash
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	return rep, nil
}

// check returns why r does not follow the entry (prevID, prevHash), or "".
func check(r *row, prevID int64, prevHash string) string {
	switch {
	case r.ID != prevID+1 && r.ID-1 == prevID+1:
		return fmt.Sprintf("entry %d is missing", prevID+1)
	case r.ID != prevID+1:
		return fmt.Sprintf("entries %d to %d are missing", prevID+1, r.ID-1)
	case r.PrevHash != prevHash:
		if prevID == 0 {
			return "the first entry does not start the chain"
		}
		return fmt.Sprintf("prev_hash does not match entry %d: an entry was removed, re-ordered or forged", prevID)
	case r.Hash != r.hash():
		return "hash does not match the entry's fields: the entry was changed"
	}
	return ""
}
