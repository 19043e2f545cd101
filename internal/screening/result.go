package screening

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/tabular"
)

// Error codes of results; translated as "error.<code>".
const (
	CodeResultUnknown        = "result.unknown"
	CodeCtRange              = "ct.range"
	CodeTestedAtFormat       = "tested_at.format"
	CodeTestedAtFuture       = "tested_at.future"
	CodeTestedBeforeSampling = "tested_at.before_sampling"
)

// Limits of results.
const (
	// resultChunk is how many results one transaction records: large
	// enough that a chunk is a handful of set-based statements, small
	// enough that it never holds locks for long.
	resultChunk = 5000
	// resultWriters is how many chunks PostgreSQL writes at once.
	resultWriters = 2
	// MaxResults bounds one JSON request; larger sets go through the import.
	MaxResults = 10000
	maxCt      = 50
	// testClockSkew is how far ahead of the server's clock a lab
	// instrument's clock may be.
	testClockSkew = 5 * time.Minute
)

// ResultHeaders are the columns of a results file, in template order.
var ResultHeaders = []string{"tube_code", "result", "ct_orf1ab", "ct_n", "tested_at"}

// resultImport reads result files: the English headers, and the Chinese
// ones of lab information systems' exports. Ct values are optional.
var resultImport = tabular.Import{
	Required: []string{"tube_code", "result", "tested_at"},
	Aliases: map[string]string{
		"管码": "tube_code", "采样管编码": "tube_code", "采样管条码": "tube_code", "样本编号": "tube_code", "条码": "tube_code",
		"结果": "result", "检测结果": "result",
		"orf1ab": "ct_orf1ab", "orf1ab ct": "ct_orf1ab", "orf1ab基因": "ct_orf1ab", "orf1ab基因ct值": "ct_orf1ab",
		"n": "ct_n", "n ct": "ct_n", "n基因": "ct_n", "n基因ct值": "ct_n",
		"检测时间": "tested_at", "报告时间": "tested_at",
	},
}

// resultWords are the results as written in Chinese lab reports.
var resultWords = map[string]Result{
	"阴性": Negative, "阳性": Positive, "可疑": Suspicious, "可疑阳性": Suspicious, "无效": Invalid,
}

// ResultInput is one tube's result as a lab sends it.
type ResultInput struct {
	TubeCode string   `json:"tube_code"`
	Result   Result   `json:"result"`
	CtORF1ab *float64 `json:"ct_orf1ab"`
	CtN      *float64 `json:"ct_n"`
	// TestedAt is RFC 3339, or 2006-01-02 15:04[:05] in the bureau's time zone.
	TestedAt string `json:"tested_at"`
	// Row numbers the input in the report's rejections: the spreadsheet
	// row of an import; 0 means its position in the list, from 1.
	Row int `json:"-"`
}

// ResultReport says what became of a set of results. Accepted counts the
// results recorded, including those already recorded the same way before
// (Unchanged of them: sending a result again is harmless). Each rejected
// row is reported and nothing of it written; the other rows are kept.
type ResultReport struct {
	Accepted  int                `json:"accepted"`
	Unchanged int                `json:"unchanged"`
	Rejected  []tabular.RowError `json:"rejected"`
	// The codes of the accepted positive, suspicious and invalid tubes.
	PositiveTubes   []string `json:"positive_tubes"`
	SuspiciousTubes []string `json:"suspicious_tubes"`
	InvalidTubes    []string `json:"invalid_tubes"`
	// Recalls counts the recalls the results created.
	Recalls int `json:"recalls"`
}

func newResultReport() ResultReport {
	return ResultReport{Rejected: []tabular.RowError{}, PositiveTubes: []string{}, SuspiciousTubes: []string{}, InvalidTubes: []string{}}
}

// RejectedRows counts the distinct rejected rows.
func (r ResultReport) RejectedRows() int {
	n, last := 0, -1
	for _, e := range r.Rejected {
		if e.Row != last {
			n++
			last = e.Row
		}
	}
	return n
}

// validResult reports whether r is one of the results.
func validResult(r Result) bool { return slices.Contains(Results, r) }

// resultRow is one checked result.
type resultRow struct {
	row      int
	code     string
	result   Result
	ct1, ct2 sql.NullFloat64
	tested   int64
}

// checkResult validates a result's own fields; what depends on the tube
// (its scope, state and first sample) is checked when it is recorded.
func checkResult(in ResultInput, now time.Time, loc *time.Location) (resultRow, error) {
	var problems apperr.Problems
	r := resultRow{row: in.Row, code: normalTubeCode(in.TubeCode), result: in.Result}
	switch {
	case r.code == "":
		problems.Add("tube_code", "required", "this field is required")
	case len(r.code) > maxTubeCode || !plainToken(r.code):
		problems.Add("tube_code", "tube_code.format", "a tube code is at most %d letters, digits and - _ . :", maxTubeCode)
	}
	if !validResult(r.result) {
		problems.Add("result", CodeResultUnknown, "must be negative, positive, suspicious or invalid")
	}
	r.ct1 = checkCt(&problems, "ct_orf1ab", in.CtORF1ab)
	r.ct2 = checkCt(&problems, "ct_n", in.CtN)
	if strings.TrimSpace(in.TestedAt) == "" {
		problems.Add("tested_at", "required", "this field is required")
	} else if t, ok := parseTestedAt(in.TestedAt, loc); !ok {
		problems.Add("tested_at", CodeTestedAtFormat, "write the test time as 2006-01-02 15:04 or RFC 3339")
	} else if t.After(now.Add(testClockSkew)) {
		problems.Add("tested_at", CodeTestedAtFuture, "the test time is in the future")
	} else {
		r.tested = storage.Millis(t)
	}
	return r, problems.Err()
}

// checkCt validates an optional Ct value.
func checkCt(problems *apperr.Problems, field string, v *float64) sql.NullFloat64 {
	if v == nil {
		return sql.NullFloat64{}
	}
	if math.IsNaN(*v) || *v < 0 || *v > maxCt {
		problems.Add(field, CodeCtRange, "must be a number from 0 to %v", maxCt)
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *v, Valid: true}
}

// parseTestedAt reads a test time: RFC 3339, or a local time in loc.
func parseTestedAt(s string, loc *time.Location) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// RecordResults records tubes' results and applies their rules (DESIGN.md
// §5.1): a negative tube's members are negative through it; every member of
// a positive, suspicious or invalid tube is recalled, with one recall
// deadline per tube for its sampling point; a positive or suspicious tube
// opens a positive-report deadline for the responsible CDC; the member of a
// positive single tube is a preliminary positive; an invalid tube's members
// leave the coverage counts until sampled again. Coverage counters and
// turnaround are kept.
//
// Each bad result is rejected with its row (its position, from 1, unless
// ResultInput.Row says otherwise) and the others are recorded, in
// transactions of up to 5,000 results. The same result for a tube again is
// accepted and changes nothing; a different one is rejected.
func (s *Service) RecordResults(ctx context.Context, inputs []ResultInput) (ResultReport, error) {
	return s.recordResults(ctx, inputs, resultChunk)
}

// recordResults is RecordResults in transactions of chunk results.
func (s *Service) recordResults(ctx context.Context, inputs []ResultInput, chunk int) (ResultReport, error) {
	p, now, loc, err := s.resultCaller(ctx)
	if err != nil {
		return ResultReport{}, err
	}
	rep := newResultReport()
	rows := make([]resultRow, 0, len(inputs))
	for i, in := range inputs {
		if in.Row == 0 {
			in.Row = i + 1
		}
		r, err := checkResult(in, now, loc)
		if err != nil {
			rep.Rejected = append(rep.Rejected, rowErrorsOf(in.Row, err)...)
			continue
		}
		rows = append(rows, r)
	}
	if err := s.recordResultRows(ctx, p, rows, chunk, &rep); err != nil {
		return ResultReport{}, err
	}
	return rep, nil
}

// ImportResults records the results of a CSV or .xlsx file with the
// columns tube_code, result, ct_orf1ab, ct_n, tested_at (Ct values
// optional; Chinese headers and result words accepted) and reports each bad
// row by its spreadsheet row number. The whole file is read and checked
// first, so a problem with the file as a whole (wrong headers, too many bad
// rows) writes nothing; then the good rows are recorded as RecordResults
// does.
func (s *Service) ImportResults(ctx context.Context, src io.Reader, f tabular.Format) (ResultReport, error) {
	p, now, loc, err := s.resultCaller(ctx)
	if err != nil {
		return ResultReport{}, err
	}
	// The rows are gathered in blocks and joined once: a slice of a
	// million rows regrown by append cost 1 s, against 40 ms allocated once.
	var blocks [][]resultRow
	var block []resultRow
	rejected, err := resultImport.Read(src, f, func(row int, rec tabular.Record) error {
		r, err := checkResult(resultRecord(row, rec), now, loc)
		if err != nil {
			return err
		}
		if len(block) == cap(block) {
			blocks = append(blocks, block)
			block = make([]resultRow, 0, resultChunk)
		}
		block = append(block, r)
		return nil
	})
	if err != nil {
		return ResultReport{}, err
	}
	rep := newResultReport()
	rep.Rejected = append(rep.Rejected, rejected...)
	if err := s.recordResultRows(ctx, p, slices.Concat(append(blocks, block)...), resultChunk, &rep); err != nil {
		return ResultReport{}, err
	}
	err = s.audit.RecordOutside(ctx, audit.Entry{Action: "lab_result.import", ObjectType: "tube",
		Detail: fmt.Sprintf("accepted=%d unchanged=%d rejected_rows=%d", rep.Accepted, rep.Unchanged, rep.RejectedRows())})
	if err != nil {
		return ResultReport{}, fmt.Errorf("screening: audit result import: %w", err)
	}
	return rep, nil
}

// resultCaller returns the principal recording results (one of
// ResultRoles), the time and the bureau's zone local test times are in.
func (s *Service) resultCaller(ctx context.Context) (*scope.Principal, time.Time, *time.Location, error) {
	p, err := scope.Require(ctx, ResultRoles...)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	loc, err := s.settings.Location(ctx)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	return p, s.now(), loc, nil
}

// resultRecord reads one file row; a Ct cell that is not a number becomes
// NaN, which checkResult rejects.
func resultRecord(row int, rec tabular.Record) ResultInput {
	in := ResultInput{Row: row, TubeCode: rec.Get("tube_code"), TestedAt: rec.Get("tested_at")}
	word := rec.Get("result")
	if r, ok := resultWords[word]; ok {
		in.Result = r
	} else {
		in.Result = Result(strings.ToLower(word))
	}
	ct := func(cell string) *float64 {
		if cell == "" {
			return nil
		}
		v, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.IsInf(v, 0) {
			v = math.NaN()
		}
		return &v
	}
	in.CtORF1ab, in.CtN = ct(rec.Get("ct_orf1ab")), ct(rec.Get("ct_n"))
	return in
}

// rowErrorsOf turns a validation error into row errors, one per field.
func rowErrorsOf(row int, err error) []tabular.RowError {
	e := apperr.As(err)
	if e == nil || len(e.Fields) == 0 {
		return []tabular.RowError{{Row: row, Code: string(apperr.CodeOf(err)), Error: err.Error()}}
	}
	out := make([]tabular.RowError, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = tabular.RowError{Row: row, Field: f.Field, Code: f.Code, Error: f.Message, Args: f.Args}
	}
	return out
}

// recordResultRows records checked rows in transactions of size rows and
// sorts the report's rejections by row.
func (s *Service) recordResultRows(ctx context.Context, p *scope.Principal, rows []resultRow, size int, rep *ResultReport) error {
	firsts, repeats := splitRepeats(rows)
	// PostgreSQL writes two chunks of first rows at once, each on its own
	// backend: they name different tubes, and a chunk takes all its tubes
	// in one statement before any counter row, so their locks do not
	// cycle. SQLite has one writer.
	workers := 1
	if s.db.Dialect == storage.Postgres {
		workers = resultWriters
	}
	for _, part := range []struct {
		rows    []resultRow
		workers int
	}{{firsts, workers}, {repeats, 1}} {
		if err := s.recordChunks(ctx, p, part.rows, size, part.workers, rep); err != nil {
			return err
		}
	}
	slices.SortStableFunc(rep.Rejected, func(a, b tabular.RowError) int { return cmp.Compare(a.Row, b.Row) })
	for _, list := range []*[]string{&rep.PositiveTubes, &rep.SuspiciousTubes, &rep.InvalidTubes} {
		slices.Sort(*list)
		*list = slices.Compact(*list)
	}
	return nil
}

// splitRepeats separates each tube's first row from its later rows, both
// in file order. A tube's first row is recorded before any later row for it
// (a repeat: unchanged, or a conflict if its result differs), whichever
// chunk is written first, because all first rows are committed before the
// repeats are written.
func splitRepeats(rows []resultRow) (firsts, repeats []resultRow) {
	firsts = make([]resultRow, 0, len(rows))
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		if seen[r.code] {
			repeats = append(repeats, r)
			continue
		}
		seen[r.code] = true
		firsts = append(firsts, r)
	}
	return firsts, repeats
}

// recordChunks records rows in transactions of size rows, workers at a
// time, and adds their outcomes to rep. A chunk that lost a deadlock is run
// once more. If a chunk fails, the chunks already committed stay (repeating
// the file records the rest and leaves those unchanged) and its error is
// returned.
func (s *Service) recordChunks(ctx context.Context, p *scope.Principal, rows []resultRow, size, workers int, rep *ResultReport) error {
	var chunks [][]resultRow
	for start := 0; start < len(rows); start += size {
		chunks = append(chunks, rows[start:min(start+size, len(rows))])
	}
	outs := make([]ResultReport, len(chunks))
	next := make(chan int)
	failed := make(chan error, len(chunks))
	var wg sync.WaitGroup
	for range min(workers, len(chunks)) {
		wg.Go(func() {
			for i := range next {
				record := func(tx *sql.Tx) error {
					outs[i] = newResultReport()
					return s.recordChunk(ctx, tx, p, chunks[i], &outs[i])
				}
				err := s.db.InTx(ctx, record)
				if storage.IsRetryable(err) {
					// A deadlock with a registration batch or another
					// chunk (the plan, not the code, orders the locks):
					// the chunk was rolled back; run it once more.
					err = s.db.InTx(ctx, record)
				}
				if err != nil {
					failed <- err
				}
			}
		})
	}
feed:
	for i := range chunks {
		select {
		case next <- i:
		case err := <-failed:
			failed <- err
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(failed)
	if err := <-failed; err != nil {
		return err
	}
	for _, out := range outs {
		rep.Accepted += out.Accepted
		rep.Unchanged += out.Unchanged
		rep.Recalls += out.Recalls
		rep.Rejected = append(rep.Rejected, out.Rejected...)
		rep.PositiveTubes = append(rep.PositiveTubes, out.PositiveTubes...)
		rep.SuspiciousTubes = append(rep.SuspiciousTubes, out.SuspiciousTubes...)
		rep.InvalidTubes = append(rep.InvalidTubes, out.InvalidTubes...)
	}
	return nil
}

// resultTube is a tube as the results path sees and changes it.
type resultTube struct {
	id, campaignID, institutionID int64
	code, region                  string
	state                         TubeState
	result                        Result
	capacity, members             int
	firstSampledAt                int64
	// countedRegions is the residence of each member counted in
	// coverage, space-separated (tubes.counted_regions).
	countedRegions string
}

// resultChange is one tube getting its result in this chunk.
type resultChange struct {
	tube *resultTube
	row  resultRow
	// written says the tube row already has the result (applyResults).
	written bool
}

// count lists an accepted tube under its result.
func (r *ResultReport) count(result Result, code string) {
	switch result {
	case Positive:
		r.PositiveTubes = append(r.PositiveTubes, code)
	case Suspicious:
		r.SuspiciousTubes = append(r.SuspiciousTubes, code)
	case Invalid:
		r.InvalidTubes = append(r.InvalidTubes, code)
	}
}

// recordChunk records one chunk of results inside tx. Every write is one
// statement for the whole chunk, except the deadlines, which are opened
// per positive, suspicious or invalid tube (a small share of all tubes).
func (s *Service) recordChunk(ctx context.Context, tx *sql.Tx, p *scope.Principal, rows []resultRow, out *ResultReport) error {
	if s.db.Dialect == storage.Postgres {
		// Every statement of a chunk looks up the chunk's tubes and their
		// few specimens by key. With statistics older than a day's growth
		// (autovacuum's ANALYZE lags a table filling by millions of rows),
		// PostgreSQL guessed each tube had thousands of specimens and
		// hashed whole tables instead: 10,500 results/s over 2 million
		// specimens against 29,000 after an ANALYZE. The chunk keeps to
		// index lookups whatever the statistics say.
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_seqscan = off"); err != nil {
			return fmt.Errorf("screening: plan results by key: %w", err)
		}
	}
	codes := make([]string, len(rows))
	for i, r := range rows {
		codes[i] = r.code
	}
	if err := s.fileTubes(ctx, tx, codes); err != nil {
		return err
	}
	now := s.now()
	applied, err := s.applyResults(ctx, tx, p, rows, now)
	if err != nil {
		return err
	}
	var rest []resultRow
	for _, r := range rows {
		if applied[r.code] == nil {
			rest = append(rest, r)
		}
	}
	tubes, err := s.lockResultTubes(ctx, tx, p, rest)
	if err != nil {
		return err
	}
	reject := func(r resultRow, field, code, msg string, args ...any) {
		out.Rejected = append(out.Rejected, tabular.RowError{Row: r.row, Field: field, Code: code, Error: fmt.Sprintf(msg, args...), Args: args})
	}
	var changes []resultChange
	for _, r := range rows {
		// The first row of an applied tube is the one applyResults wrote;
		// its later rows in the chunk meet the tube as resulted.
		if t := applied[r.code]; t != nil && tubes[r.code] == nil {
			t.state, t.result = TubeResulted, r.result
			tubes[r.code] = t
			changes = append(changes, resultChange{tube: t, row: r, written: true})
			out.Accepted++
			out.count(r.result, t.code)
			continue
		}
		t := tubes[r.code]
		switch {
		case t == nil:
			reject(r, "tube_code", CodeTubeUnknown, "no such tube")
			continue
		case t.result != "":
			if t.result != r.result {
				reject(r, "result", CodeTubeAlreadyResulted, "this tube already has another result")
				continue
			}
			out.Unchanged++
		case t.state == TubeOpen:
			reject(r, "tube_code", CodeTubeNotSealed, "this tube is not sealed yet")
			continue
		case r.tested < t.firstSampledAt:
			reject(r, "tested_at", CodeTestedBeforeSampling, "the test time is before the tube's first sample")
			continue
		default:
			t.result = r.result
			changes = append(changes, resultChange{tube: t, row: r})
		}
		out.Accepted++
		out.count(r.result, t.code)
	}
	if len(changes) == 0 {
		return nil
	}
	w := resultWriter{s: s, tx: tx, p: p, changes: changes, now: now}
	// The shared counter rows (and the audit chain) are written last, so
	// concurrent writers — other labs' chunks, registration batches — wait
	// for them as briefly as possible.
	for _, step := range []func(context.Context) error{
		w.updateTubes, w.uncountInvalid, w.recall, w.preliminaryPositives, w.openDeadlines, w.resultResampled,
		w.countTurnaround, w.countCoverage, w.record,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	out.Recalls = w.recalls
	return nil
}

// applyResults writes, on PostgreSQL, the result of each tube of the chunk
// that takes it as it stands — in the caller's scope, sealed or later,
// without a result, first sampled before the test — in one statement that
// both locks and changes the tubes, and returns those tubes as they were
// (their state and result aside). The chunk's other rows are read and
// judged one by one (lockResultTubes): a tube unknown, open, resulted
// already or tested too early, and a tube's later rows in the chunk.
//
// A locking read followed by an update visited every tube twice: 8.5 s
// and 8.2 s of database time for 1,000,000 results, against 14.3 s for
// this one statement (most of it is reaching each tube's page). The rows
// go in code order and the chunk is planned by key (nested loops over the
// rows), so the tubes are locked in code order as registrations lock
// them. SQLite has no row locks, so there the read and the update stay
// two statements; its planner, without statistics, would also walk a
// lab's index for this join instead of the codes.
func (s *Service) applyResults(ctx context.Context, tx *sql.Tx, p *scope.Principal, rows []resultRow, now time.Time) (map[string]*resultTube, error) {
	if s.db.Dialect != storage.Postgres || len(rows) == 0 {
		return nil, nil
	}
	firsts := make([]resultRow, 0, len(rows))
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		if !seen[r.code] {
			seen[r.code] = true
			firsts = append(firsts, r)
		}
	}
	slices.SortFunc(firsts, func(x, y resultRow) int { return strings.Compare(x.code, y.code) })
	values := make([]any, len(firsts))
	for i, r := range firsts {
		values[i] = []any{r.code, string(r.result), nullFloat(r.ct1), nullFloat(r.ct2), r.tested}
	}
	param, err := jsonParam(values)
	if err != nil {
		return nil, err
	}
	var a storage.Args
	x := s.jsonRows(a.Add(param), jsonCol{"xcode", "TEXT"}, jsonCol{"xresult", "TEXT"}, jsonCol{"xct1", "DOUBLE PRECISION"},
		jsonCol{"xct2", "DOUBLE PRECISION"}, jsonCol{"xtested", "BIGINT"})
	query := `UPDATE tubes SET state = 'resulted', result = x.xresult, ct_orf1ab = x.xct1, ct_n = x.xct2, tested_at = x.xtested,
		resulted_at = ` + a.Add(storage.Millis(now)) + `, resulted_by = ` + a.Add(actorID(p)) + `
		FROM ` + x + ` x
		WHERE tubes.code = x.xcode AND ` + tubeScope(p, &a, "tubes") + ` AND tubes.result IS NULL AND tubes.state <> 'open'
		AND tubes.first_sampled_at <= x.xtested
		RETURNING tubes.id, tubes.code, tubes.campaign_id, tubes.institution_id, tubes.region_code, tubes.capacity, tubes.members,
		tubes.first_sampled_at, tubes.counted_regions`
	res, err := tx.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: record results: %w", err)
	}
	defer res.Close()
	tubes := make(map[string]*resultTube, len(firsts))
	for res.Next() {
		t := &resultTube{}
		if err := res.Scan(&t.id, &t.code, &t.campaignID, &t.institutionID, &t.region, &t.capacity, &t.members,
			&t.firstSampledAt, &t.countedRegions); err != nil {
			return nil, fmt.Errorf("screening: record results: %w", err)
		}
		tubes[t.code] = t
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("screening: record results: %w", err)
	}
	return tubes, nil
}

// lockResultTubes reads the chunk's tubes in the caller's scope by code (a
// lab's: those handed to it) and, on PostgreSQL, locks them in code order —
// the order the registration path locks them in — so concurrent chunks and
// registrations neither overwrite nor deadlock each other.
func (s *Service) lockResultTubes(ctx context.Context, tx *sql.Tx, p *scope.Principal, rows []resultRow) (map[string]*resultTube, error) {
	tubes := make(map[string]*resultTube, len(rows))
	if len(rows) == 0 {
		return tubes, nil
	}
	var codes []any
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		if !seen[r.code] {
			seen[r.code] = true
			codes = append(codes, []any{r.code})
		}
	}
	var a storage.Args
	param, err := jsonParam(codes)
	if err != nil {
		return nil, err
	}
	// CROSS JOIN keeps SQLite looking the tubes up by code, one by one,
	// rather than scanning a lab's tubes (its index on lab_id) for them.
	query := `SELECT t.id, t.code, t.campaign_id, t.institution_id, t.region_code, t.state, t.result, t.capacity, t.members, t.first_sampled_at,
		t.counted_regions
		FROM ` + s.jsonRows(a.Add(param), jsonCol{"code", "TEXT"}) + ` x CROSS JOIN tubes t
		WHERE t.code = x.code AND ` + tubeScope(p, &a, "t") + " ORDER BY t.code"
	if s.db.Dialect == storage.Postgres {
		query += " FOR NO KEY UPDATE OF t"
	}
	res, err := tx.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: read tubes to result: %w", err)
	}
	defer res.Close()
	for res.Next() {
		t := &resultTube{}
		var result sql.NullString
		if err := res.Scan(&t.id, &t.code, &t.campaignID, &t.institutionID, &t.region, &t.state, &result, &t.capacity, &t.members,
			&t.firstSampledAt, &t.countedRegions); err != nil {
			return nil, fmt.Errorf("screening: read tubes to result: %w", err)
		}
		t.result = Result(result.String)
		tubes[t.code] = t
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("screening: read tubes to result: %w", err)
	}
	return tubes, nil
}

// resultWriter writes one chunk's changes.
type resultWriter struct {
	s       *Service
	tx      *sql.Tx
	p       *scope.Principal
	changes []resultChange
	now     time.Time
	recalls int
}

// changed returns the changes whose result is one of results.
func (w *resultWriter) changed(results ...Result) []resultChange {
	var out []resultChange
	for _, c := range w.changes {
		if slices.Contains(results, c.row.result) {
			out = append(out, c)
		}
	}
	return out
}

// tubeRows are the changes' tube ids, results and Ct values as rows for
// jsonRows(tubeParamCols...).
func tubeRows(changes []resultChange) []any {
	rows := make([]any, len(changes))
	for i, c := range changes {
		rows[i] = []any{c.tube.id, string(c.row.result), nullFloat(c.row.ct1), nullFloat(c.row.ct2), c.row.tested, c.tube.capacity}
	}
	return rows
}

var tubeParamCols = []jsonCol{{"id", "BIGINT"}, {"result", "TEXT"}, {"ct1", "DOUBLE PRECISION"}, {"ct2", "DOUBLE PRECISION"},
	{"tested", "BIGINT"}, {"capacity", "INTEGER"}}

func nullFloat(v sql.NullFloat64) any {
	if !v.Valid {
		return nil
	}
	return v.Float64
}

// exec runs one statement over the given changes as the JSON rows x.
func (w *resultWriter) exec(ctx context.Context, what string, changes []resultChange, query func(x string, a *storage.Args) string) (int64, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	return w.execRows(ctx, what, tubeRows(changes), tubeParamCols, query)
}

// execRows runs one statement over rows as the JSON rows x with columns
// cols, and returns how many rows it changed.
func (w *resultWriter) execRows(ctx context.Context, what string, rows []any, cols []jsonCol, query func(x string, a *storage.Args) string) (int64, error) {
	param, err := jsonParam(rows)
	if err != nil {
		return 0, err
	}
	var a storage.Args
	x := w.s.jsonRows(a.Add(param), cols...)
	res, err := w.tx.ExecContext(ctx, query(x, &a), a.Values()...)
	if err != nil {
		return 0, fmt.Errorf("screening: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("screening: %s: %w", what, err)
	}
	return n, nil
}

// updateTubes writes the results onto the tubes applyResults did not.
func (w *resultWriter) updateTubes(ctx context.Context) error {
	var unwritten []resultChange
	for _, c := range w.changes {
		if !c.written {
			unwritten = append(unwritten, c)
		}
	}
	_, err := w.exec(ctx, "record results", unwritten, func(x string, a *storage.Args) string {
		return `UPDATE tubes SET state = 'resulted', result = x.result, ct_orf1ab = x.ct1, ct_n = x.ct2, tested_at = x.tested,
			resulted_at = ` + a.Add(storage.Millis(w.now)) + `, resulted_by = ` + a.Add(actorID(w.p)) + `
			FROM ` + x + ` x WHERE tubes.id = x.id`
	})
	return err
}

// turnaroundBucket is the turnaround bucket (turnaroundHours) of a time
// from first sample to test.
func turnaroundBucket(d time.Duration) int {
	for _, h := range turnaroundHours {
		if h != 0 && d <= time.Duration(h)*time.Hour {
			return h
		}
	}
	return 0
}

// countTurnaround adds the tubes to the turnaround counters of their
// campaign and region, in key order so concurrent chunks never deadlock.
func (w *resultWriter) countTurnaround(ctx context.Context) error {
	type key struct {
		campaignID int64
		region     string
		bucket     int
	}
	counts := make(map[key]int)
	for _, c := range w.changes {
		d := time.Duration(c.row.tested-c.tube.firstSampledAt) * time.Millisecond
		counts[key{c.tube.campaignID, c.tube.region, turnaroundBucket(d)}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y key) int {
		return cmp.Or(cmp.Compare(x.campaignID, y.campaignID), strings.Compare(x.region, y.region), cmp.Compare(x.bucket, y.bucket))
	})
	rows := make([]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{k.campaignID, k.region, k.bucket, counts[k]}
	}
	cols := []jsonCol{{"campaign_id", "BIGINT"}, {"region_code", "TEXT"}, {"bucket", "INTEGER"}, {"tubes", "BIGINT"}}
	_, err := w.execRows(ctx, "count turnaround", rows, cols, func(x string, _ *storage.Args) string {
		return `INSERT INTO turnaround (campaign_id, region_code, bucket, tubes)
			SELECT x.campaign_id, x.region_code, x.bucket, x.tubes FROM ` + x + ` x WHERE x.tubes > 0
			ON CONFLICT (campaign_id, region_code, bucket) DO UPDATE SET tubes = turnaround.tubes + excluded.tubes`
	})
	return err
}

// countCoverage adds the counted members of the tubes with a result (not
// invalid) to resulted, and those of positive tubes to positive, per
// campaign and residence, in key order. The residences come from the tube
// rows (counted_regions), so no specimen is read. (WHERE TRUE: SQLite
// reads "FROM x ON" as the start of a join unless the SELECT has a WHERE
// before ON CONFLICT.)
func (w *resultWriter) countCoverage(ctx context.Context) error {
	type tally struct{ resulted, positive int }
	counts := make(map[coverageKey]*tally)
	for _, c := range w.changed(Negative, Positive, Suspicious) {
		for _, region := range strings.Fields(c.tube.countedRegions) {
			k := coverageKey{c.tube.campaignID, region}
			if counts[k] == nil {
				counts[k] = &tally{}
			}
			counts[k].resulted++
			if c.row.result == Positive {
				counts[k].positive++
			}
		}
	}
	if len(counts) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(x, y coverageKey) int {
		return cmp.Or(cmp.Compare(x.campaignID, y.campaignID), strings.Compare(x.region, y.region))
	})
	rows := make([]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{k.campaignID, k.region, counts[k].resulted, counts[k].positive}
	}
	cols := []jsonCol{{"campaign_id", "BIGINT"}, {"region_code", "TEXT"}, {"resulted", "BIGINT"}, {"positive", "BIGINT"}}
	_, err := w.execRows(ctx, "count coverage", rows, cols, func(x string, _ *storage.Args) string {
		return `INSERT INTO coverage (campaign_id, region_code, resulted, positive)
			SELECT x.campaign_id, x.region_code, x.resulted, x.positive FROM ` + x + ` x WHERE TRUE
			ON CONFLICT (campaign_id, region_code) DO UPDATE SET resulted = coverage.resulted + excluded.resulted,
			positive = coverage.positive + excluded.positive`
	})
	return err
}

// uncountInvalid takes the members of invalid tubes out of coverage: their
// person's counted place is freed, and the registration path gives it to
// their next specimen; the tube counts no residence any more.
func (w *resultWriter) uncountInvalid(ctx context.Context) error {
	invalid := w.changed(Invalid)
	if _, err := w.exec(ctx, "uncount invalid tubes", invalid, func(x string, a *storage.Args) string {
		return `UPDATE tubes SET counted_regions = '' WHERE id IN (SELECT x.id FROM ` + x + ` x)`
	}); err != nil {
		return err
	}
	if _, err := w.exec(ctx, "free counted places", invalid, func(x string, a *storage.Args) string {
		return `UPDATE campaign_persons SET counted_specimen_id = NULL
			WHERE (campaign_id, person_id, counted_specimen_id) IN (SELECT s.campaign_id, s.person_id, s.id
			FROM ` + x + ` x, specimens s WHERE s.tube_id = x.id AND s.counted = TRUE)`
	}); err != nil {
		return err
	}
	_, err := w.exec(ctx, "uncount specimens", invalid, func(x string, a *storage.Args) string {
		return `UPDATE specimens SET counted = FALSE WHERE counted = TRUE AND tube_id IN (SELECT x.id FROM ` + x + ` x)`
	})
	return err
}

// recall creates a recall for every member of the positive, suspicious and
// invalid tubes, placed by the member's residence and due when the tube's
// recall deadline is.
func (w *resultWriter) recall(ctx context.Context) error {
	due, err := w.due(ctx, settings.Recall)
	if err != nil {
		return err
	}
	n, err := w.exec(ctx, "create recalls", w.changed(Positive, Suspicious, Invalid), func(x string, a *storage.Args) string {
		return `INSERT INTO recalls (campaign_id, tube_id, specimen_id, person_id, region_code, institution_id, reason, state, due_at, created_at)
			SELECT s.campaign_id, s.tube_id, s.id, s.person_id, s.region_code, s.institution_id, x.result, 'to_notify',
			` + a.Add(storage.Millis(due)) + `, ` + a.Add(storage.Millis(w.now)) + `
			FROM ` + x + ` x, specimens s WHERE s.tube_id = x.id ORDER BY s.id
			ON CONFLICT (specimen_id) DO NOTHING`
	})
	w.recalls = int(n)
	return err
}

// due returns now plus the duration the setting names.
func (w *resultWriter) due(ctx context.Context, setting string) (time.Time, error) {
	d, err := w.s.settings.With(w.tx).Duration(ctx, setting)
	if err != nil {
		return time.Time{}, err
	}
	return w.now.Add(d), nil
}

// preliminaryPositives records the member of each positive single tube as a
// preliminary positive for the tracing module.
func (w *resultWriter) preliminaryPositives(ctx context.Context) error {
	var single []resultChange
	for _, c := range w.changed(Positive) {
		if c.tube.capacity == 1 {
			single = append(single, c)
		}
	}
	_, err := w.exec(ctx, "record preliminary positives", single, func(x string, a *storage.Args) string {
		return `INSERT INTO preliminary_positives (campaign_id, tube_id, specimen_id, person_id, region_code, institution_id,
			ct_orf1ab, ct_n, created_at)
			SELECT s.campaign_id, s.tube_id, s.id, s.person_id, s.region_code, s.institution_id, x.ct1, x.ct2, ` + a.Add(storage.Millis(w.now)) + `
			FROM ` + x + ` x, specimens s WHERE s.tube_id = x.id ORDER BY s.id
			ON CONFLICT (specimen_id) DO NOTHING`
	})
	return err
}

// openDeadlines opens a recall deadline for the sampling point of each
// positive, suspicious or invalid tube, and a positive-report deadline for
// the responsible CDC of each positive or suspicious one.
func (w *resultWriter) openDeadlines(ctx context.Context) error {
	recalled := w.changed(Positive, Suspicious, Invalid)
	if len(recalled) == 0 {
		return nil
	}
	recallDue, err := w.due(ctx, settings.Recall)
	if err != nil {
		return err
	}
	reportDue, err := w.due(ctx, settings.PositiveReport)
	if err != nil {
		return err
	}
	cdcs := make(map[string]int64)
	for _, c := range recalled {
		t := c.tube
		id := strconv.FormatInt(t.id, 10)
		_, err := w.s.deadlines.Open(ctx, w.tx, deadlines.Deadline{Kind: deadlines.Recall, SubjectType: "tube", SubjectID: id,
			Title: recallTitle(t, c.row.result), RegionCode: t.region, InstitutionID: t.institutionID, DueAt: recallDue})
		if err != nil {
			return err
		}
		if c.row.result == Invalid {
			continue
		}
		cdc, ok := cdcs[t.region]
		if !ok {
			if cdc, err = w.s.responsibleCDC(ctx, w.tx, t.region); err != nil {
				return err
			}
			cdcs[t.region] = cdc
		}
		_, err = w.s.deadlines.Open(ctx, w.tx, deadlines.Deadline{Kind: deadlines.PositiveReport, SubjectType: "tube", SubjectID: id,
			Title: reportTitle(t, c.row.result), RegionCode: t.region, InstitutionID: cdc, DueAt: reportDue})
		if err != nil {
			return err
		}
	}
	return nil
}

// recallTitle and reportTitle name a tube's duties without personal data.
func recallTitle(t *resultTube, r Result) string {
	word := map[Result]string{Positive: "阳性", Suspicious: "可疑", Invalid: "无效"}[r]
	return fmt.Sprintf("召回复采 %s（%s，%d人）", t.code, word, t.members)
}

func reportTitle(t *resultTube, r Result) string {
	switch {
	case r == Suspicious:
		return "可疑阳性 " + t.code
	case t.capacity == 1:
		return "单管阳性 " + t.code
	}
	return "混管阳性 " + t.code
}

// responsibleCDC returns the CDC responsible for a region: the active
// institution of type cdc whose region is the longest prefix of it; 0 when
// there is none (the duty is then the region's).
func (s *Service) responsibleCDC(ctx context.Context, q storage.Querier, region string) (int64, error) {
	var a storage.Args
	var marks []string
	for _, n := range []int{2, 4, 6, 9, 12} {
		if n <= len(region) {
			marks = append(marks, a.Add(region[:n]))
		}
	}
	if len(marks) == 0 {
		return 0, nil
	}
	var id int64
	err := q.QueryRowContext(ctx, "SELECT id FROM institutions WHERE type = "+a.Add(string(regions.CDC))+" AND active = "+a.Add(true)+
		" AND region_code IN ("+strings.Join(marks, ", ")+") ORDER BY LENGTH(region_code) DESC, id LIMIT 1", a.Values()...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("screening: find responsible CDC: %w", err)
	}
	return id, nil
}

// resultResampled moves the recalls whose resample specimen is in one of
// the tubes to resulted: the recalled person now has a result.
func (w *resultWriter) resultResampled(ctx context.Context) error {
	_, err := w.exec(ctx, "result resampled recalls", w.changes, func(x string, a *storage.Args) string {
		return `UPDATE recalls SET state = 'resulted', resulted_at = ` + a.Add(storage.Millis(w.now)) + `
			WHERE state = 'resampled' AND resample_specimen_id IN (SELECT s.id FROM ` + x + ` x, specimens s WHERE s.tube_id = x.id)`
	})
	return err
}

// record writes one audit entry per resulted tube, last in the transaction.
func (w *resultWriter) record(ctx context.Context) error {
	entries := make([]audit.Entry, len(w.changes))
	for i, c := range w.changes {
		detail := string(c.row.result)
		if c.row.ct1.Valid || c.row.ct2.Valid {
			detail += fmt.Sprintf(" ct_orf1ab=%s ct_n=%s", ctText(c.row.ct1), ctText(c.row.ct2))
		}
		entries[i] = audit.Entry{Action: "tube.result", ObjectType: "tube", ObjectID: c.tube.code, Detail: detail}
	}
	return w.s.audit.RecordBatch(ctx, w.tx, entries)
}

func ctText(v sql.NullFloat64) string {
	if !v.Valid {
		return "-"
	}
	return strconv.FormatFloat(v.Float64, 'f', -1, 64)
}

// RecordResult records one tube's result, as a lab enters it on its page
// or sends it for a single tube, and returns the tube. Unlike
// RecordResults, a problem is the request's error: 422 for a bad field,
// 404 for a tube not in scope, 409 for a tube still open or already
// resulted otherwise.
func (s *Service) RecordResult(ctx context.Context, code string, in ResultInput) (Tube, error) {
	in.TubeCode, in.Row = code, 1
	rep, err := s.RecordResults(ctx, []ResultInput{in})
	if err != nil {
		return Tube{}, err
	}
	if len(rep.Rejected) > 0 {
		var problems apperr.Problems
		for _, e := range rep.Rejected {
			switch e.Code {
			case CodeTubeUnknown:
				return Tube{}, apperr.NotFoundf("tube not found")
			case CodeTubeNotSealed, CodeTubeAlreadyResulted:
				return Tube{}, &apperr.Error{Code: apperr.Conflict, Message: e.Error,
					Fields: []apperr.FieldError{{Field: e.Field, Code: e.Code, Message: e.Error}}}
			}
			problems = append(problems, apperr.FieldError{Field: e.Field, Code: e.Code, Message: e.Error, Args: e.Args})
		}
		return Tube{}, problems.Err()
	}
	p, err := scope.FromContext(ctx)
	if err != nil {
		return Tube{}, err
	}
	return s.getTube(ctx, s.db, p, code, false)
}

// jsonCol is one column of jsonRows: its name and SQL type.
type jsonCol struct{ name, typ string }

// jsonRows returns a subquery reading rows from a JSON array of arrays bound
// as the one parameter param, with the named, typed columns. A chunk of
// thousands of rows then costs one parameter instead of thousands: SQLite
// binds numbered parameters in time quadratic in their count, and
// PostgreSQL takes at most 65,535.
func (s *Service) jsonRows(param string, cols ...jsonCol) string {
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if s.db.Dialect == storage.Postgres {
			fmt.Fprintf(&b, "CAST(j.value->>%d AS %s) AS %s", i, c.typ, c.name)
		} else {
			fmt.Fprintf(&b, "json_extract(j.value, '$[%d]') AS %s", i, c.name)
		}
	}
	if s.db.Dialect == storage.Postgres {
		b.WriteString(" FROM json_array_elements(CAST(CAST(" + param + " AS TEXT) AS json)) AS j)")
	} else {
		b.WriteString(" FROM json_each(" + param + ") AS j)")
	}
	return b.String()
}

// jsonParam encodes rows for jsonRows.
func jsonParam(rows []any) (string, error) {
	b, err := json.Marshal(rows)
	if err != nil {
		return "", fmt.Errorf("screening: encode rows: %w", err)
	}
	return string(b), nil
}
