// Package scope carries who is asking (the Principal) and turns their scope
// into SQL. Every query that reads or writes scoped rows adds Principal.Where;
// a query without it should look wrong at a glance. Out-of-scope rows are
// simply not found, so they answer 404 exactly like missing ones.
package scope

import (
	"context"
	"slices"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/storage"
)

// Role is a user's function. The codes are an interface (CLI --role, API,
// exports): keep them exactly.
type Role string

// The roles of DESIGN.md §2.
const (
	BureauAdmin      Role = "bureau_admin"
	Epidemiologist   Role = "epidemiologist"
	InstitutionStaff Role = "institution_staff"
	Sampler          Role = "sampler"
	Lab              Role = "lab"
	IsolationStaff   Role = "isolation_staff"
	Inspector        Role = "inspector"
	FamilyDoctor     Role = "family_doctor"
)

// Roles lists every role in display order.
var Roles = []Role{BureauAdmin, Epidemiologist, InstitutionStaff, Sampler, Lab, IsolationStaff, Inspector, FamilyDoctor}

// ParseRole validates a role code.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", apperr.Field("role", "role.unknown", "unknown role %q", s)
}

// Principal is the authenticated caller: a user (through a session or a
// token) or the system itself (CLI commands, the scheduler).
type Principal struct {
	UserID   int64
	Username string
	Roles    []Role
	// RegionCode is the root of the search scope: the user's region, or the
	// region of their institution when InstitutionID is set.
	RegionCode string
	// InstitutionID, when non-zero, narrows the scope to one institution.
	InstitutionID int64
	// TokenID is set when the caller authenticated with an API token.
	TokenID int64
	system  bool
}

// System returns the principal for work the system does on its own behalf;
// its scope is everything. Only CLI commands and background jobs use it.
func System() *Principal { return &Principal{Username: "system", system: true} }

// IsSystem reports whether p is the system principal.
func (p *Principal) IsSystem() bool { return p.system }

// Has reports whether p holds role r.
func (p *Principal) Has(r Role) bool { return p.system || slices.Contains(p.Roles, r) }

// HasAny reports whether p holds any of the roles.
func (p *Principal) HasAny(rs ...Role) bool {
	for _, r := range rs {
		if p.Has(r) {
			return true
		}
	}
	return false
}

// Require returns the principal in ctx if it holds one of the roles: the
// preamble of every store function. Nobody named is Unauthorized, a
// principal without the roles Forbidden.
func Require(ctx context.Context, rs ...Role) (*Principal, error) {
	p, err := FromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Require(rs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Require returns a Forbidden error unless p holds one of the roles.
func (p *Principal) Require(rs ...Role) error {
	if p.HasAny(rs...) {
		return nil
	}
	return apperr.New(apperr.Forbidden, "your role does not allow this")
}

// CoversRegion reports whether a region code lies in p's region subtree.
func (p *Principal) CoversRegion(code string) bool {
	// An empty scope covers nothing, as in Where: never fall open.
	return p.system || (code != "" && p.RegionCode != "" && strings.HasPrefix(code, p.RegionCode))
}

// CoversScope reports whether the scope (region, institution) lies within p's
// own scope. Admins use it so they can never grant wider than they hold.
func (p *Principal) CoversScope(regionCode string, institutionID int64) bool {
	if p.system {
		return true
	}
	if p.InstitutionID != 0 {
		return institutionID == p.InstitutionID
	}
	return p.CoversRegion(regionCode)
}

// CheckCapture returns an error unless a new record in regionCode (and
// institutionID, 0 if none) may be written by p. The capture scope is never
// wider than the search scope; it is checked before inserts, which have no
// WHERE clause to carry the scope.
func (p *Principal) CheckCapture(field, regionCode string, institutionID int64) error {
	if p.system {
		return nil
	}
	if !p.CoversRegion(regionCode) {
		return apperr.Field(field, "region_code.out_of_scope", "region %v is outside your scope", regionCode)
	}
	if p.InstitutionID != 0 && institutionID != 0 && institutionID != p.InstitutionID {
		return apperr.Field("institution_id", "institution.out_of_scope", "that institution is outside your scope")
	}
	return nil
}

// Where returns a SQL condition restricting rows to p's search scope, adding
// its parameters to args. regionCol names the row's region-code column;
// institutionCol its owning-institution column, or "" if the table has none
// (then an institution-scoped user is limited to the institution's region).
// Both names are SQL identifiers written by the caller, never user input.
func (p *Principal) Where(args *storage.Args, regionCol, institutionCol string) string {
	if p.system {
		return "1=1"
	}
	if p.InstitutionID != 0 && institutionCol != "" {
		return institutionCol + " = " + args.Add(p.InstitutionID)
	}
	if p.RegionCode == "" {
		// A user with no scope sees nothing; never fall open.
		return "1=0"
	}
	return RegionPrefix(args, regionCol, p.RegionCode)
}

// WhereOverlaps returns a SQL condition for rows about a region (regionCol)
// that overlaps p's scope: inside it, or one of the regions that contain it.
// A district's screening campaign concerns the township user inside it,
// though the campaign's region is wider than the user's. Institution-scoped
// users overlap through their institution's region.
func (p *Principal) WhereOverlaps(args *storage.Args, regionCol string) string {
	if p.system {
		return "1=1"
	}
	if p.RegionCode == "" {
		return "1=0"
	}
	cond := RegionPrefix(args, regionCol, p.RegionCode)
	var outer []string
	for _, n := range codeLengths {
		if n < len(p.RegionCode) {
			outer = append(outer, args.Add(p.RegionCode[:n]))
		}
	}
	if len(outer) == 0 {
		return cond
	}
	return "(" + cond + " OR " + regionCol + " IN (" + strings.Join(outer, ", ") + "))"
}

// codeLengths are the lengths of division codes: province, city, district,
// township, village.
var codeLengths = []int{2, 4, 6, 9, 12}

// RegionPrefix returns a condition "col lies in the subtree of code" as a
// range on the code, which uses an ordinary index on both databases.
// Region codes are digit strings, so the subtree of "330305" is every code
// c with "330305" <= c < "330306".
func RegionPrefix(args *storage.Args, col, code string) string {
	upper, ok := nextPrefix(code)
	if !ok {
		return col + " >= " + args.Add(code)
	}
	return "(" + col + " >= " + args.Add(code) + " AND " + col + " < " + args.Add(upper) + ")"
}

// nextPrefix returns the smallest string greater than every string with the
// given digit prefix: the prefix with its last non-'9' digit incremented and
// the trailing 9s dropped. All-9s prefixes have no upper bound.
func nextPrefix(code string) (string, bool) {
	b := []byte(code)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal in ctx, or an Unauthorized error: store
// functions fail closed when nobody is named.
func FromContext(ctx context.Context) (*Principal, error) {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	if p == nil {
		return nil, apperr.New(apperr.Unauthorized, "sign in first")
	}
	return p, nil
}
