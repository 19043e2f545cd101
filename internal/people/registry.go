package people

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// UnmaskRoles may see a person's data in the clear, stating a reason.
var UnmaskRoles = []scope.Role{scope.BureauAdmin, scope.Epidemiologist, scope.FamilyDoctor, scope.IsolationStaff}

// Search limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	maxQuery     = 100 // runes of a search text
)

// bureauZone is the time zone in which ages turn over. China has kept UTC+8
// without daylight saving since 1991.
var bureauZone = time.FixedZone("CST", 8*60*60)

// Registry is the person registry. Every method takes the principal from ctx
// and confines reads to their scope (persons are scoped by residence region,
// or by registering institution for institution-scoped users) and writes to
// their capture scope. One registry serves everyone: re-registering a person
// who lives elsewhere is allowed when the residence given now lies in the
// writer's capture scope (the person has moved there); it then updates the
// one row, which leaves the old region's scope.
type Registry struct {
	db   *storage.DB
	tree *regions.Tree
	log  *audit.Log
	now  func() time.Time
}

// NewRegistry returns the registry kept in db; now is the clock (time.Now when nil).
func NewRegistry(db *storage.DB, tree *regions.Tree, log *audit.Log, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{db: db, tree: tree, log: log, now: now}
}

// Register registers a person, or updates them when (ID type, ID number) is
// already registered; created says which. Every bad field is reported at
// once (an Invalid error) and nothing is written on any error.
func (r *Registry) Register(ctx context.Context, np NewPerson) (p Person, created bool, err error) {
	err = r.db.InTx(ctx, func(tx *sql.Tx) error {
		p, created, err = r.RegisterTx(ctx, tx, np)
		return err
	})
	return p, created, err
}

// RegisterTx is Register inside the caller's transaction (a specimen
// registration carries its person). It records its audit entry in tx too,
// which takes the audit chain lock until tx ends.
func (r *Registry) RegisterTx(ctx context.Context, tx *sql.Tx, np NewPerson) (Person, bool, error) {
	p, created, entry, err := r.register(ctx, tx, np)
	if err != nil {
		return Person{}, false, err
	}
	if err := r.log.Record(ctx, tx, entry); err != nil {
		return Person{}, false, fmt.Errorf("people: audit registration: %w", err)
	}
	return p, created, nil
}

// register writes one registration and returns the audit entry it owes, so
// bulk imports can record all of theirs at the end in one batch.
func (r *Registry) register(ctx context.Context, tx *sql.Tx, np NewPerson) (Person, bool, audit.Entry, error) {
	pr, err := scope.FromContext(ctx)
	if err != nil {
		return Person{}, false, audit.Entry{}, err
	}
	now := r.now()
	in, err := r.validate(ctx, tx, pr, np, now)
	if err != nil {
		return Person{}, false, audit.Entry{}, err
	}
	at := storage.Millis(now)
	by := userID(pr)
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO persons (id_type, id_number, name, sex, birth_date, phone, no_phone,
		address, region_code, institution_id, tags, created_at, updated_at, created_by, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $13)
		ON CONFLICT (id_type, id_number) DO NOTHING RETURNING id`,
		in.IDType, in.IDNumber, in.Name, in.Sex, birthText(in.BirthDate), in.Phone, in.NoPhone,
		in.Address, in.RegionCode, nullID(in.InstitutionID), joinTags(orEmpty(in.Tags)), at, by).Scan(&id)
	switch {
	case err == nil:
		in.ID, in.CreatedAt, in.UpdatedAt, in.CreatedBy, in.UpdatedBy = id, storage.FromMillis(at), storage.FromMillis(at), by.Int64, by.Int64
		in.Tags = orEmpty(in.Tags)
		r.fill(&in, now)
		return in, true, audit.Entry{Action: "person.create", ObjectType: "person", ObjectID: strconv.FormatInt(id, 10)}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return Person{}, false, audit.Entry{}, fmt.Errorf("people: insert person: %w", err)
	}

	// Already registered: update the one row, if it lies in the writer's
	// scope. A person registered outside it is neither overwritten nor shown:
	// that would let anyone who knows an ID number rewrite (and take out of
	// its owners' sight) a record elsewhere. A user whose scope covers both
	// places moves a resident.
	lock := ""
	if r.db.Dialect == storage.Postgres {
		lock = " FOR UPDATE"
	}
	var a storage.Args
	query := "SELECT " + personColumns + " FROM persons p WHERE p.id_type = " + a.Add(in.IDType) +
		" AND p.id_number = " + a.Add(in.IDNumber) + " AND " + pr.Where(&a, "p.region_code", "p.institution_id") + lock
	old, err := scanPerson(tx.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, false, audit.Entry{}, &apperr.Error{Code: apperr.Conflict, Message: "registered elsewhere",
			Fields: []apperr.FieldError{{Field: FieldIDNumber, Code: CodeRegisteredElsewhere,
				Message: "this person is already registered outside your scope; a user whose scope covers both places can change their residence"}}}
	}
	if err != nil {
		return Person{}, false, audit.Entry{}, fmt.Errorf("people: read registered person: %w", err)
	}
	p := old
	p.Name, p.Phone, p.NoPhone, p.RegionCode = in.Name, in.Phone, in.NoPhone, in.RegionCode
	p.Sex, p.BirthDate = in.Sex, in.BirthDate
	if in.Address != "" {
		p.Address = in.Address
	}
	if in.Tags != nil {
		p.Tags = in.Tags
	}
	p.UpdatedAt, p.UpdatedBy = storage.FromMillis(at), by.Int64
	if _, err := tx.ExecContext(ctx, `UPDATE persons SET name = $1, sex = $2, birth_date = $3, phone = $4, no_phone = $5,
		address = $6, region_code = $7, tags = $8, updated_at = $9, updated_by = $10 WHERE id = $11`,
		p.Name, p.Sex, birthText(p.BirthDate), p.Phone, p.NoPhone, p.Address, p.RegionCode, joinTags(p.Tags), at, by, p.ID); err != nil {
		return Person{}, false, audit.Entry{}, fmt.Errorf("people: update person: %w", err)
	}
	r.fill(&p, now)
	entry := audit.Entry{Action: "person.update", ObjectType: "person", ObjectID: strconv.FormatInt(p.ID, 10)}
	if old.RegionCode != p.RegionCode {
		entry.Detail = "residence moved from " + old.RegionCode + " to " + p.RegionCode
	}
	return p, false, entry, nil
}

// validate checks and normalises a registration, naming every bad field,
// and checks that the writer may register the person there.
func (r *Registry) validate(ctx context.Context, q storage.Querier, pr *scope.Principal, np NewPerson, now time.Time) (Person, error) {
	p, problems := r.normalize(np, now)
	p.InstitutionID = np.InstitutionID
	if p.InstitutionID == 0 {
		p.InstitutionID = pr.InstitutionID
	}
	if p.RegionCode != "" && !problems.Has(FieldRegionCode) {
		if err := pr.CheckCapture(FieldRegionCode, p.RegionCode, p.InstitutionID); err != nil {
			problems.AddErr("", err)
		}
	}
	if p.InstitutionID != 0 && np.InstitutionID != 0 {
		var n int
		var a storage.Args
		query := "SELECT COUNT(*) FROM institutions i WHERE i.id = " + a.Add(p.InstitutionID) + " AND " + pr.Where(&a, "i.region_code", "i.id")
		if err := q.QueryRowContext(ctx, query, a.Values()...).Scan(&n); err != nil {
			return Person{}, fmt.Errorf("people: check institution: %w", err)
		}
		if n == 0 {
			problems.Add(FieldInstID, CodeInstUnknown, "no such institution")
		}
	}
	return p, problems.Err()
}

// Normalize checks and normalises what a registration says about a person —
// ID, name, phone, address, tags and residence — naming every bad field. It
// neither reads the database nor checks anyone's scope: a specimen
// registration links a person who lives anywhere to the sampling point's
// record, and checks the point's scope itself.
func (r *Registry) Normalize(np NewPerson) (Person, error) {
	p, problems := r.normalize(np, r.now())
	return p, problems.Err()
}

func (r *Registry) normalize(np NewPerson, now time.Time) (Person, apperr.Problems) {
	var problems apperr.Problems
	var p Person
	var err error
	if p.IDType, err = ParseIDType(string(np.IDType)); err != nil {
		problems.AddErr("", err)
	} else {
		num, rid, err := NormalizeIDNumber(p.IDType, np.IDNumber, now.In(bureauZone))
		if err != nil {
			problems.AddErr("", err)
		}
		p.IDNumber = num
		if rid != nil {
			p.Sex, p.BirthDate = rid.Sex, rid.BirthDate
		}
	}
	p.Name = cleanText(&problems, FieldName, CodeNameLength, np.Name, 1, maxName)
	switch {
	case trimEdges(np.Phone) != "":
		if p.Phone, err = NormalizePhone(np.Phone); err != nil {
			problems.AddErr("", err)
		}
	case np.NoPhone:
		p.NoPhone = true
	default:
		problems.Add(FieldPhone, CodeRequired, "this field is required")
	}
	p.Address = cleanText(&problems, FieldAddress, CodeAddressLength, np.Address, 0, maxAddress)
	p.Tags = normalTags(&problems, np.Tags)
	p.RegionCode = strings.TrimSpace(np.RegionCode)
	if p.RegionCode == "" {
		problems.Add(FieldRegionCode, CodeRequired, "this field is required")
	} else if d, err := r.tree.Resolve(p.RegionCode); err != nil {
		problems.AddErr(FieldRegionCode, err)
	} else if d.Level < regions.District {
		problems.Add(FieldRegionCode, CodeRegionLevel, "the residence must be a district, township or village")
	}
	return p, problems
}

// Get returns a person in the caller's scope; out of scope is NotFound.
// The read is audited, and fails when it cannot be.
func (r *Registry) Get(ctx context.Context, id int64) (Person, error) {
	p, err := r.get(ctx, id)
	entry := audit.Entry{Action: "person.read", ObjectType: "person", ObjectID: strconv.FormatInt(id, 10)}
	if apperr.Is(err, apperr.NotFound) {
		entry.Outcome = audit.NotFound
	} else if err != nil {
		return Person{}, err
	}
	if aerr := r.log.RecordOutside(ctx, entry); aerr != nil {
		return Person{}, fmt.Errorf("people: audit read: %w", aerr)
	}
	return p, err
}

func (r *Registry) get(ctx context.Context, id int64) (Person, error) {
	pr, err := scope.FromContext(ctx)
	if err != nil {
		return Person{}, err
	}
	var a storage.Args
	query := "SELECT " + personColumns + " FROM persons p WHERE p.id = " + a.Add(id) +
		" AND " + pr.Where(&a, "p.region_code", "p.institution_id")
	p, err := scanPerson(r.db.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, apperr.NotFoundf("person not found")
	}
	if err != nil {
		return Person{}, fmt.Errorf("people: get person %d: %w", id, err)
	}
	r.fill(&p, r.now())
	return p, nil
}

// Unmask returns a person for display in the clear. It needs one of
// UnmaskRoles and a stated reason (4–200 characters), which the audit entry
// keeps; a refused attempt is audited too.
func (r *Registry) Unmask(ctx context.Context, id int64, reason string) (Person, error) {
	pr, err := scope.FromContext(ctx)
	if err != nil {
		return Person{}, err
	}
	entry := audit.Entry{Action: "person.unmask", ObjectType: "person", ObjectID: strconv.FormatInt(id, 10)}
	if err := pr.Require(UnmaskRoles...); err != nil {
		entry.Outcome = audit.Denied
		if aerr := r.log.RecordOutside(ctx, entry); aerr != nil {
			return Person{}, fmt.Errorf("people: audit unmask: %w", aerr)
		}
		return Person{}, err
	}
	reason = trimEdges(reason)
	if n := utf8.RuneCountInString(reason); n < minReason || n > maxReason {
		return Person{}, apperr.Field(FieldReason, CodeReasonLength, "state a reason of %v to %v characters", minReason, maxReason)
	}
	if strings.ContainsFunc(reason, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return Person{}, apperr.Field(FieldReason, CodeChars, "must not contain control characters")
	}
	p, err := r.get(ctx, id)
	entry.Detail = "reason: " + reason
	if apperr.Is(err, apperr.NotFound) {
		entry.Outcome = audit.NotFound
	} else if err != nil {
		return Person{}, err
	}
	if aerr := r.log.RecordOutside(ctx, entry); aerr != nil {
		return Person{}, fmt.Errorf("people: audit unmask: %w", aerr)
	}
	return p, err
}

// History returns the latest limit audit entries about p — who read,
// unmasked, registered or updated them, whoever it was — to a bureau admin
// whose scope covers p. p must come from Get, so it is in the caller's scope.
func (r *Registry) History(ctx context.Context, p Person, limit int) ([]audit.Item, error) {
	return r.log.About(ctx, audit.Object{Type: "person", ID: strconv.FormatInt(p.ID, 10),
		RegionCode: p.RegionCode, InstitutionID: p.InstitutionID}, limit)
}

// Query selects persons in the caller's scope.
type Query struct {
	RegionCode string // residence subtree; "" for the whole scope
	// Q matches an exact ID number (of any type, normalised), an exact phone
	// number (normalised), or else a name prefix.
	Q      string
	Tag    Tag
	Cursor int64 // the id of the last person of the previous page; 0 for the first page
	Limit  int   // DefaultLimit when 0
}

// Search returns one page of persons, newest first, and the cursor of the
// next page (0 when this is the last). The search is audited once, with the
// filters but without the searched text, which may be an ID number.
func (r *Registry) Search(ctx context.Context, q Query) ([]Person, int64, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var out []Person
	summary, err := r.each(ctx, q, limit+1, func(p Person) error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if err := r.log.RecordOutside(ctx, audit.Entry{Action: "person.search", ObjectType: "person", Detail: summary}); err != nil {
		return nil, 0, fmt.Errorf("people: audit search: %w", err)
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// Export calls fn for every person matching q (Cursor and Limit ignored),
// newest first. It is audited before any row is read, so nothing leaves
// unrecorded.
func (r *Registry) Export(ctx context.Context, q Query, format string, fn func(Person) error) error {
	if _, err := scope.FromContext(ctx); err != nil {
		return err
	}
	q.Cursor = 0
	summary, err := r.filter(q)
	if err != nil {
		return err
	}
	if err := r.log.RecordOutside(ctx, audit.Entry{Action: "person.export", ObjectType: "person", Detail: "format=" + format + " " + summary}); err != nil {
		return fmt.Errorf("people: audit export: %w", err)
	}
	_, err = r.each(ctx, q, 0, fn)
	return err
}

// each streams the persons matching q to fn; limit 0 means all. It returns
// the filter summary for the audit log.
func (r *Registry) each(ctx context.Context, q Query, limit int, fn func(Person) error) (string, error) {
	summary, err := r.filter(q)
	if err != nil {
		return "", err
	}
	var a storage.Args
	where, err := r.where(ctx, q, &a)
	if err != nil {
		return "", err
	}
	query := "SELECT " + personColumns + " FROM persons p WHERE " + where + " ORDER BY p.id DESC"
	if limit > 0 {
		query += " LIMIT " + a.Add(limit)
	}
	rows, err := r.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return "", fmt.Errorf("people: search persons: %w", err)
	}
	defer rows.Close()
	now := r.now()
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return "", fmt.Errorf("people: read person: %w", err)
		}
		r.fill(&p, now)
		if err := fn(p); err != nil {
			return "", err
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("people: search persons: %w", err)
	}
	return summary, nil
}

// filter validates q's filters and returns their summary for the audit log:
// which filters were used, never the searched text itself.
func (r *Registry) filter(q Query) (string, error) {
	var problems apperr.Problems
	var parts []string
	if q.RegionCode != "" {
		if !regions.ValidCode(q.RegionCode) {
			problems.Add(FieldRegionCode, "region_code.unknown", "unknown region code %v", q.RegionCode)
		}
		parts = append(parts, "region_code="+q.RegionCode)
	}
	if q.Tag != "" {
		if _, err := ParseTag(string(q.Tag)); err != nil {
			problems.AddErr("tag", err)
		}
		parts = append(parts, "tag="+string(q.Tag))
	}
	if s := trimEdges(q.Q); s != "" {
		if utf8.RuneCountInString(s) > maxQuery {
			problems.Add("q", "q.length", "search text of at most %v characters", maxQuery)
		}
		parts = append(parts, "q="+r.searchKind(s))
	}
	if err := problems.Err(); err != nil {
		return "", err
	}
	return strings.Join(parts, " "), nil
}

// where builds the WHERE condition for q, scope first.
func (r *Registry) where(ctx context.Context, q Query, a *storage.Args) (string, error) {
	pr, err := scope.FromContext(ctx)
	if err != nil {
		return "", err
	}
	conds := []string{pr.Where(a, "p.region_code", "p.institution_id")}
	if q.RegionCode != "" {
		conds = append(conds, scope.RegionPrefix(a, "p.region_code", q.RegionCode))
	}
	if q.Tag != "" {
		conds = append(conds, "(',' || p.tags || ',') LIKE "+a.Add("%,"+storage.EscapeLike(string(q.Tag))+",%")+` ESCAPE '\'`)
	}
	if s := trimEdges(q.Q); s != "" {
		var or []string
		if num, ok := r.idNumberQuery(s); ok {
			or = append(or, "p.id_number = "+a.Add(num))
		}
		if phone, err := NormalizePhone(s); err == nil {
			or = append(or, "p.phone = "+a.Add(phone))
		}
		if len(or) == 0 {
			or = append(or, "p.name LIKE "+a.Add(storage.EscapeLike(s)+"%")+` ESCAPE '\'`)
		}
		conds = append(conds, "("+strings.Join(or, " OR ")+")")
	}
	if q.Cursor > 0 {
		conds = append(conds, "p.id < "+a.Add(q.Cursor))
	}
	return strings.Join(conds, " AND "), nil
}

// idNumberQuery returns s as a stored ID number would be: a valid resident ID
// in its normal form, or any other document's normalised characters.
func (r *Registry) idNumberQuery(s string) (string, bool) {
	if rid, err := ParseResidentID(s, r.now().In(bureauZone)); err == nil {
		return rid.Number, true
	}
	if num, err := cleanAlnum(s, 5, 30); err == nil && strings.ContainsAny(num, "0123456789") {
		return num, true
	}
	return "", false
}

// searchKind names what a search text was taken for, for the audit log.
func (r *Registry) searchKind(s string) string {
	_, isID := r.idNumberQuery(s)
	_, phoneErr := NormalizePhone(s)
	switch {
	case isID && phoneErr == nil:
		return "id_number_or_phone"
	case isID:
		return "id_number"
	case phoneErr == nil:
		return "phone"
	}
	return "name_prefix"
}

// fill sets the fields derived when a person is read.
func (r *Registry) fill(p *Person, now time.Time) {
	p.RegionName = r.regionName(p.RegionCode)
	if !p.BirthDate.IsZero() {
		p.Age = AgeOn(p.BirthDate, now.In(bureauZone))
	}
}

// regionName returns the place names of a code; a village the data does not
// list is named by its township.
func (r *Registry) regionName(code string) string {
	if name := r.tree.Path(code); name != "" {
		return name
	}
	if d, err := r.tree.Resolve(code); err == nil && d.ParentCode != "" {
		return r.tree.Path(d.ParentCode)
	}
	return ""
}

const personColumns = "p.id, p.id_type, p.id_number, p.name, p.sex, p.birth_date, p.phone, p.no_phone, p.address, " +
	"p.region_code, p.institution_id, p.tags, p.created_at, p.updated_at, p.created_by, p.updated_by"

type scanner = storage.Scanner

func scanPerson(s scanner) (Person, error) {
	var p Person
	var birth sql.NullString
	var inst, createdBy, updatedBy sql.NullInt64
	var tags string
	var created, updated int64
	if err := s.Scan(&p.ID, &p.IDType, &p.IDNumber, &p.Name, &p.Sex, &birth, &p.Phone, &p.NoPhone, &p.Address,
		&p.RegionCode, &inst, &tags, &created, &updated, &createdBy, &updatedBy); err != nil {
		return Person{}, err
	}
	if birth.Valid {
		t, err := time.Parse(time.DateOnly, birth.String)
		if err != nil {
			// Neither the value nor the parse error (which quotes it) goes
			// into the error: it ends up in the log.
			return Person{}, fmt.Errorf("people: person %d has a malformed stored birth date", p.ID)
		}
		p.BirthDate = t
	}
	p.InstitutionID, p.CreatedBy, p.UpdatedBy = inst.Int64, createdBy.Int64, updatedBy.Int64
	p.Tags = splitTags(tags)
	p.CreatedAt, p.UpdatedAt = storage.FromMillis(created), storage.FromMillis(updated)
	return p, nil
}

func birthText(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: t.Format(time.DateOnly), Valid: true}
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// userID is the principal's user id for created_by/updated_by; NULL for the system.
func userID(p *scope.Principal) sql.NullInt64 { return nullID(p.UserID) }

func orEmpty(tags []Tag) []Tag {
	if tags == nil {
		return []Tag{}
	}
	return tags
}
