package demo

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/storage"
)

// ageBands is the age pyramid of an ageing coastal district: about a
// quarter of the residents are 65 or older.
var ageBands = []struct{ from, to, percent int }{
	{0, 4, 4}, {5, 14, 8}, {15, 24, 9}, {25, 34, 12}, {35, 44, 13},
	{45, 54, 15}, {55, 64, 16}, {65, 74, 13}, {75, 84, 7}, {85, 99, 3},
}

// noPhoneElderly is the chance that a resident of 65 or more has no phone;
// with the pyramid above it makes about 3% of all residents.
const noPhoneElderly = 0.13

// resident is one generated person, as the persons table stores it.
type resident struct {
	idNumber, name, sex, birth, phone, address, region, tags string
	noPhone                                                  bool
	institution                                              int64
}

// residentColumns are the persons columns the bulk insert fills.
const residentColumns = "id_type, id_number, name, sex, birth_date, phone, no_phone, address, region_code, institution_id, tags, created_at, updated_at"

// Bulk insert sizes: rows per INSERT statement and rows per transaction.
const (
	rowsPerInsert = 100
	rowsPerTx     = 25_000
)

// insertResidents generates each township's residents and writes them with
// multi-row INSERTs in large transactions: registering 150,000 people one
// by one through the registry would take minutes.
func insertResidents(ctx context.Context, db *storage.DB, r *rand.Rand, p plan, inst *institutions, now time.Time) (n int, err error) {
	// One connection for all batches, so its page cache setting holds for
	// them and is put back before the connection returns to the pool.
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("demo: insert residents: %w", err)
	}
	defer conn.Close()
	if db.Dialect == storage.SQLite {
		// Transactions this size outgrow SQLite's default 2 MB page cache,
		// which then spills the same pages to the WAL again and again.
		if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
			return 0, fmt.Errorf("demo: insert residents: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA cache_size = -2000")
	}
	today := now.UTC()
	names := newNameDrawer()
	used := map[string]bool{}
	var batch []resident
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := insertTx(ctx, conn, batch, storage.Millis(now)); err != nil {
			return fmt.Errorf("demo: insert residents: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for _, t := range p.townships {
		centre := inst.centres[t.Code].ID
		for range t.residents {
			batch = append(batch, newResident(r, names, used, t, centre, today))
			if len(batch) == rowsPerTx {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}

// insertTx writes one batch of residents in one transaction on conn.
func insertTx(ctx context.Context, conn *sql.Conn, batch []resident, now int64) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := insertBatch(ctx, tx, batch, now); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// newResident draws one resident of township t.
func newResident(r *rand.Rand, names *nameDrawer, used map[string]bool, t township, centre int64, today time.Time) resident {
	n := r.IntN(100)
	band := ageBands[len(ageBands)-1]
	for _, b := range ageBands {
		if n < b.percent {
			band = b
			break
		}
		n -= b.percent
	}
	age := band.from + r.IntN(band.to-band.from+1)
	birth := today.AddDate(-age, 0, -r.IntN(365))
	birth = time.Date(birth.Year(), birth.Month(), birth.Day(), 0, 0, 0, 0, time.UTC)
	male := r.IntN(2) == 0
	res := resident{region: t.Code, institution: centre, birth: birth.Format("2006-01-02")}
	if male {
		res.sex = string(people.SexMale)
	} else {
		res.sex = string(people.SexFemale)
	}
	// The ID number encodes the issuing county, the birth date and an odd
	// (male) or even (female) sequence number; redraw the rare collision.
	prefix := t.Code[:6] + birth.Format("20060102")
	for {
		seq := r.IntN(500) * 2
		if male {
			seq++
		}
		first17 := prefix + fmt.Sprintf("%03d", seq)
		id := first17 + string(people.CheckChar(first17))
		if !used[id] {
			used[id] = true
			res.idNumber = id
			break
		}
	}
	res.name = names.draw(r, male, birth.Year())
	place := t.Name
	if len(t.villages) > 0 {
		v := t.villages[r.IntN(len(t.villages))]
		res.region, place = v.Code, shortVillage(v.Name)
	}
	res.address = place + roads[r.IntN(len(roads))] + strconv.Itoa(1+r.IntN(200)) + "号"
	actualAge := people.AgeOn(birth, today)
	var tags []string
	if actualAge >= 65 {
		tags = append(tags, string(people.TagElderly))
		res.noPhone = r.Float64() < noPhoneElderly
	}
	if actualAge < 14 {
		tags = append(tags, string(people.TagChild))
	}
	if actualAge >= 50 && r.IntN(100) < 22 {
		tags = append(tags, string(people.TagChronicDisease))
	}
	if actualAge >= 80 && r.IntN(100) < 8 {
		tags = append(tags, string(people.TagBedridden))
	}
	if r.IntN(1000) < 15 {
		tags = append(tags, string(people.TagDisabled))
	}
	if r.IntN(1000) < 10 {
		tags = append(tags, string(people.TagPovertyRegistered))
	}
	if !male && actualAge >= 20 && actualAge <= 40 && r.IntN(100) < 4 {
		tags = append(tags, string(people.TagPregnant))
	}
	slices.Sort(tags)
	res.tags = strings.Join(tags, ",")
	if !res.noPhone {
		res.phone = phone(r)
	}
	return res
}

// insertBatch writes residents with multi-row INSERTs, rowsPerInsert at a
// time through one prepared statement. SQLite looks up $n parameters by name,
// which costs time in proportion to the statement's parameter count, so
// moderate statements reused beat one huge statement.
func insertBatch(ctx context.Context, tx *sql.Tx, rs []resident, now int64) error {
	full, err := tx.PrepareContext(ctx, insertResidentsSQL(rowsPerInsert))
	if err != nil {
		return err
	}
	defer full.Close()
	args := make([]any, 0, rowsPerInsert*residentParams)
	for len(rs) > 0 {
		n := min(len(rs), rowsPerInsert)
		args = args[:0]
		for _, p := range rs[:n] {
			args = append(args, string(people.IDResident), p.idNumber, p.name, p.sex, p.birth, p.phone, p.noPhone,
				p.address, p.region, p.institution, p.tags, now, now)
		}
		if n == rowsPerInsert {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertResidentsSQL(n), args...)
		}
		if err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// residentParams is the number of parameters per row of residentColumns.
const residentParams = 13

// insertResidentsSQL returns an INSERT of n rows of residentColumns.
func insertResidentsSQL(n int) string {
	var a storage.Args
	var q strings.Builder
	q.WriteString("INSERT INTO persons (" + residentColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j := range residentParams {
			if j > 0 {
				q.WriteString(", ")
			}
			q.WriteString(a.Add(nil))
		}
		q.WriteByte(')')
	}
	return q.String()
}
