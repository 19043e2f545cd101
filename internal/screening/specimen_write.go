package screening

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/storage"
)

// applyRegistrations accepts one group-commit batch of registrations: it
// answers client ids already used, fills the tubes (refusing full, sealed
// and foreign ones) and writes the accepted registrations to the filing
// queue, each with its specimen id. That is all a sampler waits for; the
// filer (fileQueued) registers the persons, writes the specimens, coverage
// and audit entries a moment later. Each step is one statement for the
// whole batch (storage.Columns: on SQLite, inserts are one prepared
// statement run per row). If a statement fails, the whole batch is abandoned
// (storage.AbortBatch): the transaction rolls back and every item gets the
// error.
func (s *Service) applyRegistrations(ctx context.Context, tx *sql.Tx, items []registration) ([]Registered, []error) {
	b := s.newRegBatch(tx, items)
	if err := b.run(ctx, b.replays, b.fillTubes, b.accept); err != nil {
		abort := storage.AbortBatch(err)
		for i := range b.errs {
			b.errs[i] = abort
			b.results[i] = Registered{}
		}
		return b.results, b.errs
	}
	b.settleDuplicates()
	return b.results, b.errs
}

func (s *Service) newRegBatch(tx *sql.Tx, items []registration) *regBatch {
	return &regBatch{s: s, tx: tx, items: items, at: storage.Millis(s.now()),
		results: make([]Registered, len(items)), errs: make([]error, len(items)),
		rows: make([]regRow, len(items))}
}

// run runs steps in order and stops at the first error.
func (b *regBatch) run(ctx context.Context, steps ...func(context.Context) error) error {
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// regBatch is one batch being accepted, or filed.
type regBatch struct {
	s       *Service
	tx      *sql.Tx
	items   []registration
	at      int64 // the batch's write time
	results []Registered
	errs    []error
	rows    []regRow
	// dupOf maps an item to the earlier item of the batch with the same
	// client id; it takes that item's outcome.
	dupOf map[int]int
	tubes map[string]*tubeRow
}

// regRow is what the batch works out for one live item.
type regRow struct {
	tube        *tubeRow
	position    int // the tube's fill with this specimen in it
	personID    int64
	newPerson   bool // created in the registry by this batch
	counted     bool // stands for its person in coverage
	firstInCamp bool // the person's first specimen in the campaign
	claim       bool // takes the place of a specimen whose tube was invalid
	specimenID  int64
}

// tubeRow is a tube as the batch sees and changes it.
type tubeRow struct {
	id, campaignID, pointID int64
	code                    string
	capacity, members       int
	state                   TubeState
	firstSampledAt          int64
	sealed, changed         bool
}

// live reports whether item i is still to be written.
func (b *regBatch) live(i int) bool {
	_, dup := b.dupOf[i]
	return b.errs[i] == nil && b.results[i].ID == 0 && !dup
}

// liveIn returns the live items' indexes ordered by compare. Statements
// that insert under a unique key list their rows in key order, so two
// batches inserting the same keys at once (the same person sampled at two
// points, a retry reaching another instance) wait for each other in one
// order instead of deadlocking.
func (b *regBatch) liveIn(compare func(i, j int) int) []int {
	var idx []int
	for i := range b.items {
		if b.live(i) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, compare)
	return idx
}

func (b *regBatch) byPerson(i, j int) int {
	x, y := b.items[i].person, b.items[j].person
	return cmp.Or(strings.Compare(string(x.IDType), string(y.IDType)), strings.Compare(x.IDNumber, y.IDNumber))
}

func (b *regBatch) byClientID(i, j int) int {
	return strings.Compare(b.items[i].clientID, b.items[j].clientID)
}

func (b *regBatch) byCampaignPerson(i, j int) int {
	return cmp.Or(cmp.Compare(b.items[i].point.campaignID, b.items[j].point.campaignID), cmp.Compare(b.rows[i].personID, b.rows[j].personID))
}

// replays answers client ids already registered: the original for the same
// body, a conflict for a different one. A client id repeated inside the
// batch waits for its first occurrence's outcome.
func (b *regBatch) replays(ctx context.Context) error {
	first := make(map[string]int, len(b.items))
	var ids []string
	for i, it := range b.items {
		if j, ok := first[it.clientID]; ok {
			if b.dupOf == nil {
				b.dupOf = make(map[int]int)
			}
			b.dupOf[i] = j
			continue
		}
		first[it.clientID] = i
		ids = append(ids, it.clientID)
	}
	// Filed or not yet: one statement, so one snapshot on PostgreSQL
	// even while the filer moves a row from the queue to specimens. It
	// joins no tube: with the join PostgreSQL took 2.4 ms to plan it
	// (planned on every run, see FreshPlan), without it 0.2-0.3 ms (the
	// load test's peak, pg_stat_statements); the rare replays read their
	// tubes after.
	d := b.s.db.Dialect
	a := d.BulkArgs()
	var query string
	if d == storage.Postgres {
		// One lookup by the unique index per client id (the LIMIT keeps
		// the subquery from being flattened into a join). With
		// "client_id = ANY(…)" PostgreSQL scanned the whole specimens
		// table while it was small (14,000 rows, the demo district's),
		// comparing each row with each of a batch's ~127 ids: 1.1-1.6 ms
		// a batch on average (sampled ones up to 4.6 ms), against 0.3 ms
		// for the lookups.
		query = `SELECT r.id, r.client_id, r.body_hash, r.tube_id FROM unnest(CAST(` + a.Add(ids) + ` AS TEXT[])) AS c (client_id)
			CROSS JOIN LATERAL (SELECT id, client_id, body_hash, tube_id FROM specimens WHERE client_id = c.client_id
				UNION ALL SELECT id, client_id, body_hash, tube_id FROM specimen_queue WHERE client_id = c.client_id LIMIT 1) AS r`
	} else {
		query = `SELECT id, client_id, body_hash, tube_id FROM specimens WHERE ` + storage.InList(d, &a, "client_id", ids) + `
			UNION ALL SELECT id, client_id, body_hash, tube_id FROM specimen_queue WHERE ` + storage.InList(d, &a, "client_id", ids)
	}
	rows, err := b.tx.QueryContext(ctx, query, d.FreshPlan(a.Values())...)
	if err != nil {
		return fmt.Errorf("screening: find registered client ids: %w", err)
	}
	var again []int // items replayed, each with its tube id in tubeOf
	tubeOf := make(map[int]int64)
	err = storage.EachRow(rows, func(rows *sql.Rows) error {
		var r Registered
		var hash string
		var tube int64
		if err := rows.Scan(&r.ID, &r.ClientID, &hash, &tube); err != nil {
			return err
		}
		i := first[r.ClientID]
		if hash != b.items[i].hash {
			b.errs[i] = conflict("client_id", CodeClientIDReused, "this client id was already used for a different registration")
			return nil
		}
		b.results[i] = r
		again, tubeOf[i] = append(again, i), tube
		return nil
	})
	if err != nil {
		return fmt.Errorf("screening: find registered client ids: %w", err)
	}
	if len(again) == 0 {
		return nil
	}
	tubes := make([]int64, 0, len(again))
	for _, i := range again {
		tubes = append(tubes, tubeOf[i])
	}
	a = d.BulkArgs()
	type fill struct {
		code, state       string
		members, capacity int
	}
	fills := make(map[int64]fill)
	rows, err = b.tx.QueryContext(ctx, "SELECT id, code, members, capacity, state FROM tubes WHERE "+storage.InList(d, &a, "id", tubes), a.Values()...)
	if err == nil {
		err = storage.EachRow(rows, func(rows *sql.Rows) error {
			var id int64
			var f fill
			if err := rows.Scan(&id, &f.code, &f.members, &f.capacity, &f.state); err != nil {
				return err
			}
			fills[id] = f
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("screening: read the tubes of registered client ids: %w", err)
	}
	for _, i := range again {
		f := fills[tubeOf[i]]
		r := &b.results[i]
		r.TubeCode, r.TubeCount, r.TubeCapacity, r.TubeState = f.code, f.members, f.capacity, f.state
	}
	return nil
}

// fillTubes loads (or opens) every tube the batch names and assigns each
// live item a place in its tube, refusing full, sealed and foreign tubes.
func (b *regBatch) fillTubes(ctx context.Context) error {
	codes := b.liveCodes()
	if len(codes) == 0 {
		return nil
	}
	var err error
	if b.tubes, err = b.openTubes(ctx, codes); err != nil {
		return err
	}
	for i, it := range b.items {
		if !b.live(i) {
			continue
		}
		t := b.tubes[it.tubeCode]
		switch {
		case t == nil:
			return fmt.Errorf("screening: tube %s neither found nor opened", it.tubeCode)
		case t.campaignID != it.point.campaignID || t.pointID != it.point.id:
			b.errs[i] = conflict("tube_code", CodeTubeElsewhere, "this tube is in use at another sampling point or campaign")
		case t.members >= t.capacity:
			b.errs[i] = conflict("tube_code", CodeTubeFull, "this tube is full (%d of %d); take a new tube", t.members, t.capacity)
		case t.state != TubeOpen:
			b.errs[i] = conflict("tube_code", CodeTubeSealed, "this tube is sealed; take a new tube")
		default:
			t.members++
			t.changed = true
			t.firstSampledAt = min(t.firstSampledAt, it.sampledAt)
			if t.members == t.capacity {
				// A full tube is sealed: nothing more goes in.
				t.state, t.sealed = TubeSealed, true
			}
			b.rows[i].tube, b.rows[i].position = t, t.members
		}
	}
	return nil
}

// liveCodes returns the distinct tube codes of the live items, sorted, so
// concurrent batches lock tubes in the same order.
func (b *regBatch) liveCodes() []string {
	var codes []string
	for i, it := range b.items {
		if b.live(i) {
			codes = append(codes, it.tubeCode)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// openTubes opens the tubes first named by this batch, at the point and
// with the campaign's pool size of the first item naming each, and reads
// every tube named, locked for the batch. It writes nothing to a tube it
// finds: the batch's one update of its fill (accept) is then the row's
// first change in the transaction, which on PostgreSQL spares the update
// the foreign-key checks it makes of a row changed earlier in the same
// transaction (two a tube, and a row version: with a no-op update here,
// 2.6 of a batch's 8.5 ms in the database went to the fill update).
//
// On PostgreSQL it is one statement, one round trip. Its insert takes
// every tube named in one pass, in code order: it inserts the tubes no one
// has opened and locks the others (ON CONFLICT DO UPDATE … WHERE false
// locks the row, FOR NO KEY UPDATE strength, and changes nothing), waiting
// for a tube another transaction is opening or holds. Every lock a batch
// waits for is taken there, in one order, so batches written at once wait
// for each other instead of deadlocking. (Inserting with DO NOTHING and
// locking the tubes found afterwards took them in two passes: batches
// deadlocked, 1 s each before PostgreSQL broke the cycle, and
// TestRegisterOverlappingBatches failed about once in twenty runs when a
// batch's retry deadlocked again; with one pass, 40 runs logged none.)
// The statement then reads the tubes it locked in their latest version
// (FOR NO KEY UPDATE, on locks it holds), as a concurrent seal or fill
// left them, so a batch filling a tube another batch filled never
// overfills it. A tube another transaction opened while the statement ran
// is locked by it but not seen (its snapshot is older); a second statement
// reads it. SQLite's single writer already serialises batches: it reads
// the tubes there are and inserts the others.
func (b *regBatch) openTubes(ctx context.Context, codes []string) (map[string]*tubeRow, error) {
	first := make(map[string]int, len(codes))
	for i, it := range b.items {
		if _, ok := first[it.tubeCode]; !ok && b.live(i) {
			first[it.tubeCode] = i
		}
	}
	rows := make([][]any, len(codes))
	for j, c := range codes {
		it := b.items[first[c]]
		pt := it.point
		rows[j] = []any{c, pt.campaignID, pt.id, pt.institutionID, pt.regionCode, pt.poolSize, 0, string(TubeOpen), b.at, it.sampledAt}
	}
	out := make(map[string]*tubeRow, len(codes))
	scan := func(r *sql.Rows) error {
		t := &tubeRow{}
		if err := r.Scan(&t.id, &t.code, &t.campaignID, &t.pointID, &t.capacity, &t.members, &t.state, &t.firstSampledAt); err != nil {
			return err
		}
		out[t.code] = t
		return nil
	}
	const columns = "id, code, campaign_id, sampling_point_id, capacity, members, state, first_sampled_at"
	d := b.s.db.Dialect
	lock := ""
	if d == storage.Postgres {
		lock = " ORDER BY code FOR NO KEY UPDATE"
	}
	// readMissing reads the tubes named that the batch has not yet read.
	readMissing := func() error {
		var missing []string
		for _, c := range codes {
			if out[c] == nil {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		a := d.BulkArgs()
		res, err := b.tx.QueryContext(ctx, "SELECT "+columns+" FROM tubes WHERE "+storage.InList(d, &a, "code", missing)+lock, a.Values()...)
		if err == nil {
			err = storage.EachRow(res, scan)
		}
		if err != nil {
			return fmt.Errorf("screening: read tubes: %w", err)
		}
		return nil
	}
	if d == storage.SQLite {
		if err := readMissing(); err != nil {
			return nil, err
		}
		var fresh [][]any
		for j, c := range codes {
			if out[c] == nil {
				fresh = append(fresh, rows[j])
			}
		}
		if err := tubeOpening.InsertReturning(ctx, b.tx, d, "tubes", "RETURNING "+columns, fresh, scan); err != nil {
			return nil, fmt.Errorf("screening: open tubes: %w", err)
		}
		return out, nil
	}
	var a storage.Args
	with, err := tubeOpening.With(&a, d, "v", rows)
	if err != nil {
		return nil, fmt.Errorf("screening: open tubes: %w", err)
	}
	res, err := b.tx.QueryContext(ctx, with+`,
		opened AS (INSERT INTO tubes (`+tubeOpening.Names()+`) SELECT * FROM v ON CONFLICT (code) DO UPDATE SET members = tubes.members WHERE false RETURNING `+columns+`),
		found AS (SELECT `+columns+` FROM tubes WHERE `+storage.InList(d, &a, "code", codes)+lock+`)
		SELECT `+columns+` FROM opened UNION ALL SELECT `+columns+` FROM found`, a.Values()...)
	if err == nil {
		err = storage.EachRow(res, scan)
	}
	if err != nil {
		return nil, fmt.Errorf("screening: open tubes: %w", err)
	}
	return out, readMissing()
}

// The columns of the group commit's and the filer's bulk statements.
var (
	tubeOpening = storage.NewColumns("code TEXT", "campaign_id BIGINT", "sampling_point_id BIGINT", "institution_id BIGINT",
		"region_code TEXT", "capacity INTEGER", "members INTEGER", "state TEXT", "opened_at BIGINT", "first_sampled_at BIGINT")
	// tubeFill is in the order of the single-row UPDATE SQLite runs.
	tubeFill = storage.NewColumns("members INTEGER", "state TEXT", "sealed_at BIGINT", "first_sampled_at BIGINT", "id BIGINT")
	// queued is a queue row but its id: on PostgreSQL the insert draws it
	// from the sequence, on SQLite queuedWithID takes a reserved one.
	queued = storage.NewColumns("client_id TEXT", "body_hash TEXT", "campaign_id BIGINT", "sampling_point_id BIGINT",
		"tube_id BIGINT", "id_type TEXT", "id_number TEXT", "name TEXT", "sex TEXT", "birth_date TEXT", "phone TEXT", "no_phone BOOLEAN",
		"region_code TEXT", "sampled_at BIGINT", "sampled_by BIGINT", "created_at BIGINT", "origin_user_id BIGINT",
		"origin_username TEXT", "origin_region TEXT", "origin_addr TEXT", "origin_agent TEXT")
	queuedWithID  = queued.Prepend("id BIGINT")
	filedSpecimen = storage.NewColumns("id BIGINT", "client_id TEXT", "body_hash TEXT", "campaign_id BIGINT",
		"sampling_point_id BIGINT", "tube_id BIGINT", "person_id BIGINT", "region_code TEXT", "institution_id BIGINT", "phone TEXT",
		"no_phone BOOLEAN", "counted BOOLEAN", "sampled_at BIGINT", "sampled_by BIGINT", "created_at BIGINT")
	newPerson = storage.NewColumns("id_type TEXT", "id_number TEXT", "name TEXT", "sex TEXT", "birth_date TEXT", "phone TEXT",
		"no_phone BOOLEAN", "region_code TEXT", "institution_id BIGINT", "created_at BIGINT", "created_by BIGINT", "address TEXT",
		"tags TEXT", "updated_at BIGINT", "updated_by BIGINT")
	campaignPerson  = storage.NewColumns("campaign_id BIGINT", "person_id BIGINT")
	newCampPerson   = storage.NewColumns("campaign_id BIGINT", "person_id BIGINT", "region_code TEXT", "counted_specimen_id BIGINT", "first_sampled_at BIGINT")
	coverageDelta   = storage.NewColumns("campaign_id BIGINT", "region_code TEXT", "targeted INTEGER", "sampled INTEGER")
	tubeCountedMore = storage.NewColumns("id BIGINT", "counted TEXT")
)

// personKey identifies a person in the registry.
type personKey struct{ idType, idNumber string }

// findPersons links every live item to its registry row, registering the
// persons the registry does not know yet. A known person's row is not
// changed: the phone and residence given at sampling go on the specimen,
// so a sampler cannot rewrite a record kept by another region.
func (b *regBatch) findPersons(ctx context.Context) error {
	ids := make(map[personKey]int64)
	var numbers []string
	for i, it := range b.items {
		if b.live(i) {
			numbers = append(numbers, it.person.IDNumber)
		}
	}
	if len(numbers) == 0 {
		return nil
	}
	slices.Sort(numbers)
	numbers = slices.Compact(numbers)
	if err := b.readPersons(ctx, numbers, ids); err != nil {
		return err
	}
	var values [][]any
	created := make(map[personKey]bool)
	for _, i := range b.liveIn(b.byPerson) {
		it := b.items[i]
		k := personKey{string(it.person.IDType), it.person.IDNumber}
		if ids[k] != 0 || created[k] {
			continue
		}
		created[k] = true
		p := it.person
		birth := sql.NullString{}
		if !p.BirthDate.IsZero() {
			birth = sql.NullString{String: p.BirthDate.Format("2006-01-02"), Valid: true}
		}
		by := sql.NullInt64{Int64: it.by, Valid: it.by != 0}
		values = append(values, []any{string(p.IDType), p.IDNumber, p.Name, string(p.Sex), birth, p.Phone, p.NoPhone, p.RegionCode,
			it.point.institutionID, b.at, by, "", "", b.at, by})
	}
	if len(values) > 0 {
		inserted := make(map[personKey]bool)
		err := newPerson.InsertReturning(ctx, b.tx, b.s.db.Dialect, "persons", "ON CONFLICT (id_type, id_number) DO NOTHING RETURNING id, id_type, id_number",
			values, scanPersonID(ids, inserted))
		if err != nil {
			return fmt.Errorf("screening: register persons: %w", err)
		}
		// A person another instance Registered meanwhile is read back.
		var late []string
		for k := range created {
			if !inserted[k] {
				late = append(late, k.idNumber)
			}
		}
		if len(late) > 0 {
			if err := b.readPersons(ctx, late, ids); err != nil {
				return err
			}
		}
		for i, it := range b.items {
			if b.live(i) && inserted[personKey{string(it.person.IDType), it.person.IDNumber}] {
				b.rows[i].newPerson = true
				delete(inserted, personKey{string(it.person.IDType), it.person.IDNumber})
			}
		}
	}
	for i, it := range b.items {
		if !b.live(i) {
			continue
		}
		id := ids[personKey{string(it.person.IDType), it.person.IDNumber}]
		if id == 0 {
			return fmt.Errorf("screening: person of registration %s neither found nor registered", it.clientID)
		}
		b.rows[i].personID = id
	}
	return nil
}

func (b *regBatch) readPersons(ctx context.Context, numbers []string, ids map[personKey]int64) error {
	d := b.s.db.Dialect
	a := d.BulkArgs()
	rows, err := b.tx.QueryContext(ctx, "SELECT id, id_type, id_number FROM persons WHERE "+storage.InList(d, &a, "id_number", numbers), a.Values()...)
	if err == nil {
		err = storage.EachRow(rows, scanPersonID(ids, nil))
	}
	if err != nil {
		return fmt.Errorf("screening: find persons: %w", err)
	}
	return nil
}

// scanPersonID reads a row of (id, id_type, id_number) into ids, and marks
// it in seen when seen is not nil.
func scanPersonID(ids map[personKey]int64, seen map[personKey]bool) func(*sql.Rows) error {
	return func(rows *sql.Rows) error {
		var id int64
		var k personKey
		if err := rows.Scan(&id, &k.idType, &k.idNumber); err != nil {
			return err
		}
		ids[k] = id
		if seen != nil {
			seen[k] = true
		}
		return nil
	}
}

// campKey is a person in a campaign.
type campKey struct{ campaignID, personID int64 }

// findCampaignPersons decides which specimen stands for its person in the
// campaign's coverage: the first one, or the one after a specimen whose
// tube was invalid (the person's row then has no counted specimen).
func (b *regBatch) findCampaignPersons(ctx context.Context) error {
	var pairs [][]any
	seen := make(map[campKey]bool)
	for i, it := range b.items {
		k := campKey{it.point.campaignID, b.rows[i].personID}
		if b.live(i) && !seen[k] {
			seen[k] = true
			pairs = append(pairs, []any{k.campaignID, k.personID})
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	a := b.s.db.Dialect.BulkArgs()
	with, err := campaignPerson.With(&a, b.s.db.Dialect, "v", pairs)
	if err != nil {
		return fmt.Errorf("screening: find sampled persons: %w", err)
	}
	// A join on the (campaign, person) pairs, not "campaign_id IN (…) AND
	// person_id IN (…)": PostgreSQL, with a young campaign's statistics,
	// used only campaign_id from that and filtered every person sampled
	// so far, batch after batch; the join looks each pair up in the key.
	rows, err := b.tx.QueryContext(ctx, with+`
		SELECT cp.campaign_id, cp.person_id, cp.counted_specimen_id FROM campaign_persons cp
		JOIN v ON cp.campaign_id = v.campaign_id AND cp.person_id = v.person_id`, a.Values()...)
	if err != nil {
		return fmt.Errorf("screening: find sampled persons: %w", err)
	}
	defer rows.Close()
	known := make(map[campKey]bool) // value: the person awaits a counted specimen
	for rows.Next() {
		var k campKey
		var counted sql.NullInt64
		if err := rows.Scan(&k.campaignID, &k.personID, &counted); err != nil {
			return fmt.Errorf("screening: find sampled persons: %w", err)
		}
		known[k] = !counted.Valid
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("screening: find sampled persons: %w", err)
	}
	for i, it := range b.items {
		if !b.live(i) {
			continue
		}
		k := campKey{it.point.campaignID, b.rows[i].personID}
		awaiting, ok := known[k]
		switch {
		case !ok:
			b.rows[i].counted, b.rows[i].firstInCamp = true, true
		case awaiting:
			b.rows[i].counted, b.rows[i].claim = true, true
		}
		known[k] = false // a second specimen in the same batch is not counted
	}
	return nil
}

// insertSpecimens writes the batch's specimens under the ids they were
// acknowledged with.
func (b *regBatch) insertSpecimens(ctx context.Context) error {
	var rows [][]any
	for _, i := range b.liveIn(b.byClientID) {
		it, r := b.items[i], b.rows[i]
		rows = append(rows, []any{r.specimenID, it.clientID, it.hash, it.point.campaignID, it.point.id, r.tube.id, r.personID,
			it.person.RegionCode, it.point.institutionID, it.person.Phone, it.person.NoPhone, r.counted, it.sampledAt,
			sql.NullInt64{Int64: it.by, Valid: it.by != 0}, it.acceptedAt})
	}
	if err := filedSpecimen.Insert(ctx, b.tx, b.s.db.Dialect, "specimens", "", rows); err != nil {
		return fmt.Errorf("screening: insert specimens: %w", err)
	}
	return nil
}

// insertCampaignPersons records the persons sampled in the campaign for the
// first time, and hands a counted place to those whose last counted
// specimen was invalid. A person another instance counted meanwhile is
// not counted twice.
func (b *regBatch) insertCampaignPersons(ctx context.Context) error {
	var values [][]any
	for _, i := range b.liveIn(b.byCampaignPerson) {
		if it := b.items[i]; b.rows[i].firstInCamp {
			r := b.rows[i]
			values = append(values, []any{it.point.campaignID, r.personID, it.person.RegionCode, r.specimenID, it.sampledAt})
		}
	}
	if len(values) > 0 {
		inserted := make(map[campKey]bool)
		err := newCampPerson.InsertReturning(ctx, b.tx, b.s.db.Dialect, "campaign_persons",
			"ON CONFLICT (campaign_id, person_id) DO NOTHING RETURNING campaign_id, person_id", values, func(rows *sql.Rows) error {
				var k campKey
				if err := rows.Scan(&k.campaignID, &k.personID); err != nil {
					return err
				}
				inserted[k] = true
				return nil
			})
		if err != nil {
			return fmt.Errorf("screening: record sampled persons: %w", err)
		}
		for i, it := range b.items {
			r := &b.rows[i]
			if b.live(i) && r.firstInCamp && !inserted[campKey{it.point.campaignID, r.personID}] {
				if err := b.uncount(ctx, r); err != nil {
					return err
				}
			}
		}
	}
	for i, it := range b.items {
		r := &b.rows[i]
		if !b.live(i) || !r.claim {
			continue
		}
		res, err := b.tx.ExecContext(ctx, `UPDATE campaign_persons SET counted_specimen_id = $1
			WHERE campaign_id = $2 AND person_id = $3 AND counted_specimen_id IS NULL`, r.specimenID, it.point.campaignID, r.personID)
		if err != nil {
			return fmt.Errorf("screening: hand over counted place: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("screening: hand over counted place: %w", err)
		} else if n == 0 {
			if err := b.uncount(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// uncount takes a specimen out of coverage after another batch won the
// race to count its person (rare: the same person at two points at once).
func (b *regBatch) uncount(ctx context.Context, r *regRow) error {
	r.counted, r.firstInCamp, r.claim = false, false, false
	if _, err := b.tx.ExecContext(ctx, "UPDATE specimens SET counted = FALSE WHERE id = $1", r.specimenID); err != nil {
		return fmt.Errorf("screening: uncount specimen: %w", err)
	}
	return nil
}

// coverageKey is one coverage counter row.
type coverageKey struct {
	campaignID int64
	region     string
}

// countCoverage adds the batch's first-sampled persons to the coverage
// counters, and its newly Registered residents of targeted regions to the
// targeted counts (the registry had missed them).
func (b *regBatch) countCoverage(ctx context.Context) error {
	type delta struct{ targeted, sampled int }
	deltas := make(map[coverageKey]*delta)
	for i, it := range b.items {
		r := b.rows[i]
		if !b.live(i) || !r.firstInCamp {
			continue
		}
		k := coverageKey{it.point.campaignID, it.person.RegionCode}
		d := deltas[k]
		if d == nil {
			d = &delta{}
			deltas[k] = d
		}
		d.sampled++
		if r.newPerson && it.point.targetsRegion(it.person.RegionCode) {
			d.targeted++
		}
	}
	if len(deltas) == 0 {
		return nil
	}
	keys := make([]coverageKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	// One order for every batch, so concurrent batches never deadlock on
	// the counter rows.
	slices.SortFunc(keys, func(x, y coverageKey) int {
		return cmp.Or(cmp.Compare(x.campaignID, y.campaignID), strings.Compare(x.region, y.region))
	})
	values := make([][]any, len(keys))
	for i, k := range keys {
		d := deltas[k]
		values[i] = []any{k.campaignID, k.region, d.targeted, d.sampled}
	}
	err := coverageDelta.Insert(ctx, b.tx, b.s.db.Dialect, "coverage", `ON CONFLICT (campaign_id, region_code) DO UPDATE
		SET targeted = coverage.targeted + excluded.targeted, sampled = coverage.sampled + excluded.sampled`, values)
	if err != nil {
		return fmt.Errorf("screening: count coverage: %w", err)
	}
	return nil
}

// markResampled moves the open recalls of persons sampled again in the
// campaign to resampled, and meets a tube's recall deadline once none of
// its members is left to find. Only persons sampled before in the campaign
// can have a recall, so the common path runs no statement here.
func (b *regBatch) markResampled(ctx context.Context) error {
	tubes := make(map[int64]bool)
	for i, it := range b.items {
		r := b.rows[i]
		if !b.live(i) || r.firstInCamp {
			continue
		}
		rows, err := b.tx.QueryContext(ctx, `UPDATE recalls SET state = 'resampled', resampled_at = $1, resample_specimen_id = $2
			WHERE campaign_id = $3 AND person_id = $4 AND state IN ('to_notify', 'notified') RETURNING tube_id`,
			b.at, r.specimenID, it.point.campaignID, r.personID)
		if err != nil {
			return fmt.Errorf("screening: mark recalls resampled: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("screening: mark recalls resampled: %w", err)
			}
			tubes[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("screening: mark recalls resampled: %w", err)
		}
	}
	for id := range tubes {
		var open int
		if err := b.tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM recalls WHERE tube_id = $1 AND state IN ('to_notify', 'notified')", id).Scan(&open); err != nil {
			return fmt.Errorf("screening: count open recalls: %w", err)
		}
		if open == 0 {
			if err := b.s.deadlines.Meet(ctx, b.tx, deadlines.Recall, "tube", strconv.FormatInt(id, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

// accept writes the accepted registrations to the filing queue (in client
// id order: the key two instances could both insert), each with a specimen
// id, and the tubes' new fill and seals, and answers them. On PostgreSQL
// that is one statement: the queue insert draws the ids from the
// specimens' sequence and the fill update rides along as a data-modifying
// WITH, so a batch makes four round trips after BEGIN, COMMIT included,
// instead of seven (on a busy machine each round trip waited 1-3 ms to be
// scheduled, more than the statements took).
func (b *regBatch) accept(ctx context.Context) error {
	idx := b.liveIn(b.byClientID)
	if len(idx) == 0 {
		return nil
	}
	rows := make([][]any, len(idx))
	for k, i := range idx {
		it, r := b.items[i], &b.rows[i]
		p, o := it.person, it.origin
		birth := sql.NullString{}
		if !p.BirthDate.IsZero() {
			birth = sql.NullString{String: p.BirthDate.Format(time.DateOnly), Valid: true}
		}
		rows[k] = []any{it.clientID, it.hash, it.point.campaignID, it.point.id, r.tube.id, string(p.IDType), p.IDNumber,
			p.Name, string(p.Sex), birth, p.Phone, p.NoPhone, p.RegionCode, it.sampledAt, sql.NullInt64{Int64: it.by, Valid: it.by != 0},
			b.at, sql.NullInt64{Int64: o.UserID, Valid: o.UserID != 0}, o.Username, o.RegionCode, o.ClientAddr, o.UserAgent}
	}
	var fills [][]any // members, state, sealed_at, first_sampled_at, id
	for _, t := range b.tubes {
		if t.changed {
			fills = append(fills, []any{t.members, string(t.state), sql.NullInt64{Int64: b.at, Valid: t.sealed}, t.firstSampledAt, t.id})
		}
	}
	var err error
	if b.s.db.Dialect == storage.Postgres {
		err = b.acceptPostgres(ctx, idx, rows, fills)
	} else {
		err = b.acceptSQLite(ctx, idx, rows, fills)
	}
	if err != nil {
		return err
	}
	for _, i := range idx {
		it, r := b.items[i], b.rows[i]
		b.results[i] = Registered{ID: r.specimenID, ClientID: it.clientID, TubeCode: it.tubeCode, TubeCount: r.position,
			TubeCapacity: r.tube.capacity, TubeState: string(r.tube.state), Created: true}
	}
	return nil
}

func (b *regBatch) acceptPostgres(ctx context.Context, idx []int, rows, fills [][]any) error {
	var a storage.Args
	from, err := queued.Unnest(&a, rows)
	if err != nil {
		return fmt.Errorf("screening: queue registrations: %w", err)
	}
	// Every accepted registration fills a tube, so fills is never empty.
	fill, err := tubeFill.Unnest(&a, fills)
	if err != nil {
		return fmt.Errorf("screening: update tubes: %w", err)
	}
	// The sequence is looked up once (a subquery, planned as an InitPlan):
	// pg_get_serial_sequence in each row's nextval cost 3.5 µs a row
	// against 0.6 µs, about 0.4 ms of a 127-row batch.
	res, err := b.tx.QueryContext(ctx, `WITH fill AS (UPDATE tubes SET members = f.members, state = f.state,
			sealed_at = COALESCE(tubes.sealed_at, f.sealed_at), first_sampled_at = f.first_sampled_at
			FROM `+fill+` AS f (`+tubeFill.Names()+`) WHERE tubes.id = f.id)
		INSERT INTO specimen_queue (id, `+queued.Names()+`)
		SELECT nextval((SELECT pg_get_serial_sequence('specimens', 'id')::regclass)), v.* FROM `+from+` AS v (`+queued.Names()+`)
		RETURNING id, client_id`, a.Values()...)
	ids := make(map[string]int64, len(idx))
	if err == nil {
		err = storage.EachRow(res, func(r *sql.Rows) error {
			var id int64
			var clientID string
			err := r.Scan(&id, &clientID)
			ids[clientID] = id
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("screening: queue registrations: %w", err)
	}
	for _, i := range idx {
		id := ids[b.items[i].clientID]
		if id == 0 {
			return fmt.Errorf("screening: registration %s queued without an id", b.items[i].clientID)
		}
		b.rows[i].specimenID = id
	}
	return nil
}

// reserveSpecimenIDs takes n ids on SQLite from the specimens' AUTOINCREMENT
// counter and returns the last: SQLite never hands out an id at or below
// the counter, and the single writer makes the range ours.
func reserveSpecimenIDs(ctx context.Context, tx *sql.Tx, n int) (int64, error) {
	var last int64
	err := tx.QueryRowContext(ctx, "UPDATE sqlite_sequence SET seq = seq + $1 WHERE name = 'specimens' RETURNING seq", n).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("screening: reserve specimen ids: %w", err)
	}
	return last, nil
}

func (b *regBatch) acceptSQLite(ctx context.Context, idx []int, rows, fills [][]any) error {
	last, err := reserveSpecimenIDs(ctx, b.tx, len(idx))
	if err != nil {
		return err
	}
	for k, i := range idx {
		b.rows[i].specimenID = last - int64(len(idx)) + 1 + int64(k)
		rows[k] = append([]any{b.rows[i].specimenID}, rows[k]...)
	}
	if err := queuedWithID.Insert(ctx, b.tx, storage.SQLite, "specimen_queue", "", rows); err != nil {
		return fmt.Errorf("screening: queue registrations: %w", err)
	}
	// One prepared statement run per tube: parsing a VALUES list of a
	// batch's tubes, typed with CASTs, cost more than the update.
	err = storage.ExecEach(ctx, b.tx, "UPDATE tubes SET members = ?, state = ?, sealed_at = COALESCE(sealed_at, ?), first_sampled_at = ? WHERE id = ?", fills)
	if err != nil {
		return fmt.Errorf("screening: update tubes: %w", err)
	}
	return nil
}

// countRegions appends to each tube the residences of its newly filed
// members who count in coverage (the results path counts a tube's members
// from them). On PostgreSQL the tubes are locked in code order first, the
// order registrations lock them in, and FOR NO KEY UPDATE, the lock the
// UPDATE takes (every tube lock is: no writer changes a tube's id or
// code). FOR UPDATE also waits for the KEY SHARE locks that inserting
// specimens takes on their tubes (the foreign key), and two filers that
// each had inserted specimens of the other's tubes deadlocked on it.
func (b *regBatch) countRegions(ctx context.Context) error {
	counted := make(map[*tubeRow]string)
	for i, it := range b.items {
		if r := b.rows[i]; b.live(i) && r.counted {
			counted[r.tube] += it.person.RegionCode + " "
		}
	}
	if len(counted) == 0 {
		return nil
	}
	tubes := make([]*tubeRow, 0, len(counted))
	for t := range counted {
		tubes = append(tubes, t)
	}
	slices.SortFunc(tubes, func(x, y *tubeRow) int { return strings.Compare(x.code, y.code) })
	d := b.s.db.Dialect
	values := make([][]any, len(tubes))
	ids := make([]int64, len(tubes))
	for k, t := range tubes {
		values[k], ids[k] = []any{t.id, counted[t]}, t.id
	}
	if d == storage.Postgres {
		var lock storage.Args
		if err := lockRows(ctx, b.tx, "SELECT id FROM tubes WHERE "+storage.InList(d, &lock, "id", ids)+" ORDER BY code FOR NO KEY UPDATE", lock.Values()); err != nil {
			return fmt.Errorf("screening: lock tubes to count: %w", err)
		}
	}
	a := d.BulkArgs()
	with, err := tubeCountedMore.With(&a, d, "v", values)
	if err == nil {
		_, err = b.tx.ExecContext(ctx, with+` UPDATE tubes SET counted_regions = tubes.counted_regions || v.counted FROM v WHERE tubes.id = v.id`, a.Values()...)
	}
	if err != nil {
		return fmt.Errorf("screening: count tube members: %w", err)
	}
	return nil
}

// record writes the filed registrations' audit entries, each under its own
// request's user and client address.
func (b *regBatch) record(ctx context.Context) error {
	var entries []audit.Attributed
	for i, it := range b.items {
		if !b.live(i) {
			continue
		}
		r := b.rows[i]
		if r.newPerson {
			entries = append(entries, audit.Attributed{Origin: it.origin, Entry: audit.Entry{Action: "person.create", ObjectType: "person",
				ObjectID: strconv.FormatInt(r.personID, 10), Detail: "registered when sampled"}})
		}
		entries = append(entries, audit.Attributed{Origin: it.origin, Entry: audit.Entry{Action: "specimen.create", ObjectType: "specimen",
			ObjectID: strconv.FormatInt(r.specimenID, 10), Detail: "tube " + it.tubeCode + ", sampling point " + strconv.FormatInt(it.point.id, 10)}})
	}
	return b.s.audit.RecordAttributed(ctx, b.tx, entries)
}

// settleDuplicates gives each repeat of a client id inside the batch the
// outcome of its first occurrence, as a later retry would get it.
func (b *regBatch) settleDuplicates() {
	for i, j := range b.dupOf {
		switch {
		case b.errs[j] != nil:
			b.errs[i] = b.errs[j]
		case b.items[i].hash != b.items[j].hash:
			b.errs[i] = conflict("client_id", CodeClientIDReused, "this client id was already used for a different registration")
		default:
			b.results[i] = b.results[j]
			b.results[i].Created = false
		}
	}
}
