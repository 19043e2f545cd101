package regions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

// Institutions is the institution register. Every method reads the caller
// from ctx and keeps to their scope: an institution outside it is not found.
type Institutions struct {
	db    *storage.DB
	tree  *Tree
	audit *audit.Log
	now   func() time.Time
	// Changed, when set, is called after an institution was edited or
	// (de)activated: the sign-in caches forget its users' sessions and
	// tokens, whose scope may have changed with it.
	Changed func(id int64)
}

// NewInstitutions returns the register; now is the clock (time.Now when nil).
func NewInstitutions(db *storage.DB, tree *Tree, log *audit.Log, now func() time.Time) *Institutions {
	if now == nil {
		now = time.Now
	}
	return &Institutions{db: db, tree: tree, audit: log, now: now}
}

// Tree returns the division tree the register checks region codes against.
func (s *Institutions) Tree() *Tree { return s.tree }

const institutionColumns = "i.id, i.name, i.type, i.region_code, i.parent_id, i.address, i.phone, i.active, i.created_at, i.updated_at"

// scan reads one row of institutionColumns.
func (s *Institutions) scan(row interface{ Scan(...any) error }) (Institution, error) {
	var in Institution
	var parent sql.NullInt64
	var created, updated int64
	if err := row.Scan(&in.ID, &in.Name, &in.Type, &in.RegionCode, &parent, &in.Address, &in.Phone, &in.Active, &created, &updated); err != nil {
		return Institution{}, err
	}
	in.ParentID = parent.Int64
	in.CreatedAt, in.UpdatedAt = storage.FromMillis(created), storage.FromMillis(updated)
	in.RegionPath = s.tree.Path(in.RegionCode)
	return in, nil
}

// Create registers an institution. Only a bureau admin may, and only inside
// their own region; the parent must be an institution they can see whose
// region contains the new one's.
func (s *Institutions) Create(ctx context.Context, in InstitutionInput) (Institution, error) {
	p, err := scope.Require(ctx, scope.BureauAdmin)
	if err != nil {
		return Institution{}, err
	}
	if err := in.normalize(s.tree); err != nil {
		return Institution{}, err
	}
	if err := p.CheckCapture("region_code", in.RegionCode, 0); err != nil {
		return Institution{}, err
	}
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkParent(ctx, tx, p, 0, 0, in); err != nil {
			return err
		}
		now := storage.Millis(s.now())
		err := tx.QueryRowContext(ctx, `INSERT INTO institutions (name, type, region_code, parent_id, address, phone, active, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7) RETURNING id`,
			in.Name, in.Type, in.RegionCode, nullID(in.ParentID), in.Address, in.Phone, now).Scan(&id)
		if storage.IsUniqueViolation(err) {
			return nameTaken(in.Name)
		}
		if err != nil {
			return fmt.Errorf("insert institution: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "institution.create", ObjectType: "institution",
			ObjectID: strconv.FormatInt(id, 10), Detail: string(in.Type) + " " + in.RegionCode})
	})
	if err != nil {
		return Institution{}, err
	}
	return s.Get(ctx, id)
}

// Update changes an institution's details. The institution must be in the
// admin's scope, and so must the region it moves to.
func (s *Institutions) Update(ctx context.Context, id int64, in InstitutionInput) (Institution, error) {
	p, err := scope.Require(ctx, scope.BureauAdmin)
	if err != nil {
		return Institution{}, err
	}
	if err := in.normalize(s.tree); err != nil {
		return Institution{}, err
	}
	if err := p.CheckCapture("region_code", in.RegionCode, 0); err != nil {
		return Institution{}, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		current, err := s.get(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := s.checkParent(ctx, tx, p, id, current.ParentID, in); err != nil {
			return err
		}
		var a storage.Args
		q := `UPDATE institutions SET name = ` + a.Add(in.Name) + `, type = ` + a.Add(in.Type) +
			`, region_code = ` + a.Add(in.RegionCode) + `, parent_id = ` + a.Add(nullID(in.ParentID)) +
			`, address = ` + a.Add(in.Address) + `, phone = ` + a.Add(in.Phone) +
			`, updated_at = ` + a.Add(storage.Millis(s.now())) +
			` WHERE id = ` + a.Add(id) + ` AND id IN (SELECT i.id FROM institutions i WHERE ` + p.Where(&a, "i.region_code", "i.id") + `)`
		res, err := tx.ExecContext(ctx, q, a.Values()...)
		if storage.IsUniqueViolation(err) {
			return nameTaken(in.Name)
		}
		if err != nil {
			return fmt.Errorf("update institution %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.NotFoundf("institution not found")
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "institution.update", ObjectType: "institution", ObjectID: strconv.FormatInt(id, 10)})
	})
	if s.Changed != nil {
		// Also after a failure: a failed commit may have committed all the
		// same, and forgetting costs only a re-read.
		s.Changed(id)
	}
	if err != nil {
		return Institution{}, err
	}
	return s.Get(ctx, id)
}

// SetActive deactivates an institution (or reactivates it). A deactivated
// institution keeps its records and users but is no longer offered for new work.
func (s *Institutions) SetActive(ctx context.Context, id int64, active bool) (Institution, error) {
	p, err := scope.Require(ctx, scope.BureauAdmin)
	if err != nil {
		return Institution{}, err
	}
	action := "institution.deactivate"
	if active {
		action = "institution.activate"
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var a storage.Args
		q := `UPDATE institutions SET active = ` + a.Add(active) + `, updated_at = ` + a.Add(storage.Millis(s.now())) +
			` WHERE id = ` + a.Add(id) + ` AND id IN (SELECT i.id FROM institutions i WHERE ` + p.Where(&a, "i.region_code", "i.id") + `)`
		res, err := tx.ExecContext(ctx, q, a.Values()...)
		if err != nil {
			return fmt.Errorf("set institution %d active: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.NotFoundf("institution not found")
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: action, ObjectType: "institution", ObjectID: strconv.FormatInt(id, 10)})
	})
	if s.Changed != nil {
		// Also after a failure: a failed commit may have committed all the
		// same, and forgetting costs only a re-read.
		s.Changed(id)
	}
	if err != nil {
		return Institution{}, err
	}
	return s.Get(ctx, id)
}

// checkParent enforces the parent rules for institution id (0 when new),
// whose stored parent is current (0 when none): a changed parent is visible
// to p, the parent's region contains the child's, and it is not the
// institution itself or one beneath it.
func (s *Institutions) checkParent(ctx context.Context, q storage.Querier, p *scope.Principal, id, current int64, in InstitutionInput) error {
	if in.ParentID == 0 {
		return nil
	}
	var parent Institution
	var err error
	if in.ParentID == current {
		// Keeping the parent grants nothing new, and it often lies above the
		// admin's scope (a district unit under the city bureau): an edit of
		// the name must not fail on it, nor make the admin drop it.
		parent, err = s.unscopedGet(ctx, q, in.ParentID)
	} else {
		parent, err = s.get(ctx, q, p, in.ParentID)
	}
	if apperr.Is(err, apperr.NotFound) || errors.Is(err, sql.ErrNoRows) {
		return apperr.Field("parent_id", "institution.parent_unknown", "no such institution")
	}
	if err != nil {
		return err
	}
	if !s.tree.Contains(parent.RegionCode, in.RegionCode) {
		return apperr.Field("parent_id", "institution.parent_region", "the parent's region %v does not contain %v", parent.RegionCode, in.RegionCode)
	}
	// Walk up from the parent; meeting id means the change would make a loop.
	// The depth bound stops a walk through data damaged outside this code.
	for cur, depth := parent, 0; depth < 64; depth++ {
		if cur.ID == id {
			return apperr.Field("parent_id", "institution.parent_cycle", "an institution cannot be placed under itself")
		}
		if cur.ParentID == 0 {
			return nil
		}
		next, err := s.unscopedGet(ctx, q, cur.ParentID)
		if err != nil {
			return err
		}
		cur = next
	}
	return apperr.Field("parent_id", "institution.parent_cycle", "an institution cannot be placed under itself")
}

// Get returns an institution in the caller's scope.
func (s *Institutions) Get(ctx context.Context, id int64) (Institution, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return Institution{}, err
	}
	return s.get(ctx, s.db, p, id)
}

func (s *Institutions) get(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) (Institution, error) {
	var a storage.Args
	query := `SELECT ` + institutionColumns + ` FROM institutions i WHERE i.id = ` + a.Add(id) + ` AND ` + p.Where(&a, "i.region_code", "i.id")
	in, err := s.scan(q.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Institution{}, apperr.NotFoundf("institution not found")
	}
	if err != nil {
		return Institution{}, fmt.Errorf("get institution %d: %w", id, err)
	}
	return in, nil
}

// unscopedGet reads an ancestor for checkParent only (a kept parent or one
// met in the cycle check): it may lie above the admin's scope, and nothing of
// it is shown to them.
func (s *Institutions) unscopedGet(ctx context.Context, q storage.Querier, id int64) (Institution, error) {
	in, err := s.scan(q.QueryRowContext(ctx, `SELECT `+institutionColumns+` FROM institutions i WHERE i.id = $1`, id))
	if err != nil {
		return Institution{}, fmt.Errorf("get institution %d: %w", id, err)
	}
	return in, nil
}

// parentTypes are the institutions others are placed under.
var parentTypes = []InstitutionType{Bureau, CDC, Hospital, TownshipHealthCentre}

// maxParentChoices bounds the parents a form offers; a current parent beyond
// the bound is still shown (see formPage).
const maxParentChoices = 2000

// ParentChoices returns the active institutions in the caller's scope that
// others may be placed under, ordered like List, at most maxParentChoices.
func (s *Institutions) ParentChoices(ctx context.Context) ([]Institution, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	var a storage.Args
	types := make([]string, len(parentTypes))
	for i, t := range parentTypes {
		types[i] = a.Add(t)
	}
	query := `SELECT ` + institutionColumns + ` FROM institutions i WHERE ` + p.Where(&a, "i.region_code", "i.id") +
		` AND i.active = ` + a.Add(true) + ` AND i.type IN (` + strings.Join(types, ", ") + `)` +
		` ORDER BY i.region_code, i.name, i.id LIMIT ` + a.Add(maxParentChoices)
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("list parent choices: %w", err)
	}
	defer rows.Close()
	var out []Institution
	for rows.Next() {
		in, err := s.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list parent choices: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list parent choices: %w", err)
	}
	return out, nil
}

// InstitutionFilter selects institutions for List. Zero values select all.
type InstitutionFilter struct {
	Type   InstitutionType
	Region string // a division code: the institutions in its subtree
	Q      string // part of the name
	// Active is "true", "false" or "" for both.
	Active string
	// ParentID lists only the institutions directly under one institution.
	ParentID int64
	Cursor   string // from the previous page's next cursor
	Limit    int    // 1..1000; 50 when 0
}

// institutionCursor is the sort key of the last institution on a page.
type institutionCursor struct {
	Region string `json:"r"`
	Name   string `json:"n"`
	ID     int64  `json:"i"`
}

// List returns a page of institutions in the caller's scope, ordered by
// region then name, and the cursor of the next page ("" on the last).
func (s *Institutions) List(ctx context.Context, f InstitutionFilter) ([]Institution, string, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, "", err
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 1000)
	}
	var a storage.Args
	where := []string{p.Where(&a, "i.region_code", "i.id")}
	if f.Type != "" {
		t, err := ParseInstitutionType(string(f.Type))
		if err != nil {
			return nil, "", err
		}
		where = append(where, "i.type = "+a.Add(t))
	}
	if f.Region = strings.TrimSpace(f.Region); f.Region != "" {
		if !ValidCode(f.Region) {
			return nil, "", apperr.Field("region", "region_code.unknown", "unknown region code %v", f.Region)
		}
		where = append(where, scope.RegionPrefix(&a, "i.region_code", f.Region))
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		where = append(where, `LOWER(i.name) LIKE `+a.Add("%"+storage.EscapeLike(strings.ToLower(q))+"%")+` ESCAPE '\'`)
	}
	switch f.Active {
	case "":
	case "true", "false":
		where = append(where, "i.active = "+a.Add(f.Active == "true"))
	default:
		return nil, "", apperr.Field("active", "institution.active_invalid", "active must be true or false")
	}
	if f.ParentID != 0 {
		where = append(where, "i.parent_id = "+a.Add(f.ParentID))
	}
	var after institutionCursor
	if f.Cursor != "" {
		if err := web.DecodeCursor(f.Cursor, &after); err != nil {
			return nil, "", err
		}
		r, n, id := a.Add(after.Region), a.Add(after.Name), a.Add(after.ID)
		// Spelled out rather than a row comparison so both databases plan it
		// the same way.
		where = append(where, "(i.region_code > "+r+" OR (i.region_code = "+r+" AND (i.name > "+n+" OR (i.name = "+n+" AND i.id > "+id+"))))")
	}
	query := `SELECT ` + institutionColumns + ` FROM institutions i WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY i.region_code, i.name, i.id LIMIT ` + a.Add(f.Limit+1)
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("list institutions: %w", err)
	}
	defer rows.Close()
	var out []Institution
	for rows.Next() {
		in, err := s.scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list institutions: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list institutions: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = web.EncodeCursor(institutionCursor{Region: last.RegionCode, Name: last.Name, ID: last.ID})
	}
	return out, next, nil
}

// CountByRegion counts the caller's visible institutions beneath region,
// grouped by the child division of region they lie in (key: the child's
// code), plus those in region itself under the key region.
func (s *Institutions) CountByRegion(ctx context.Context, region string) (map[string]int, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	var a storage.Args
	where := p.Where(&a, "i.region_code", "i.id")
	if region != "" {
		where += " AND " + scope.RegionPrefix(&a, "i.region_code", region)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT i.region_code, COUNT(*) FROM institutions i WHERE `+where+` GROUP BY i.region_code`, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("count institutions: %w", err)
	}
	defer rows.Close()
	// Group per region code in SQL, per child in Go: a child may sit more
	// than one level down, so its code length is not fixed.
	byCode := map[string]int{}
	for rows.Next() {
		var code string
		var n int
		if err := rows.Scan(&code, &n); err != nil {
			return nil, fmt.Errorf("count institutions: %w", err)
		}
		byCode[code] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count institutions: %w", err)
	}
	kids := s.tree.Children(region)
	for code, n := range byCode {
		if code == region {
			counts[region] += n
			continue
		}
		for _, k := range kids {
			if strings.HasPrefix(code, k.Code) {
				counts[k.Code] += n
				break
			}
		}
	}
	return counts, nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

func nameTaken(name string) error {
	return apperr.Field("name", "institution.name_taken", "an institution named %v already exists in this region", name)
}
