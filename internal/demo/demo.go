// Package demo fills a database with a working district: its institutions,
// synthetic residents and one user per role, so a newcomer sees shaobing
// working at once. Everything is generated from a seed, so two runs with the
// same options give the same data.
package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// Defaults of the demo command.
const (
	DefaultRegion = "330305" // 温州市洞头区, an island district of about 150,000 residents
	// DefaultPeople keeps a run on SQLite to a few seconds;洞头区's real size
	// (150,000) loads in well under a minute with --people 150000.
	DefaultPeople = 20_000
	// Password is every demo user's password.
	Password = "shaobing-demo-2026"
	// ResidentsPerSamplingPoint sets how many sampling points a township gets.
	ResidentsPerSamplingPoint = 2_500
)

// Options say what to generate.
type Options struct {
	Region string    // a district or city code listed in the division data
	People int       // number of residents
	Seed   uint64    // the same seed gives the same data
	Now    time.Time // "today" for ages and timestamps
	// Hash is the users' password hash cost; zero means auth's default.
	Hash auth.HashParams
}

// Login is one demo user.
type Login struct {
	Username    string
	Role        scope.Role
	Scope       string // what the user sees, for the printout
	Institution string // "" for a region-scoped user
}

// Result says what Load did.
type Result struct {
	Region regions.Division
	// AlreadyLoaded is true when the database held demo data already and
	// nothing was written.
	AlreadyLoaded bool
	Institutions  map[regions.InstitutionType]int
	People        int
	Logins        []Login
	Screening     Screening
}

// Usernames are the demo users, one per role.
var Usernames = []string{"admin", "cdc", "hospital", "sampler", "lab", "isolation", "inspector", "doctor"}

// Load generates the demo data for opts.Region into db, which must be
// migrated. If the region already has a bureau or a demo user exists, it
// writes nothing and reports AlreadyLoaded.
func Load(ctx context.Context, db *storage.DB, tree *regions.Tree, opts Options) (Result, error) {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.People < 0 {
		return Result{}, fmt.Errorf("demo: --people must not be negative")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	region, ok := tree.Lookup(opts.Region)
	if !ok || (region.Level != regions.District && region.Level != regions.City) {
		return Result{}, fmt.Errorf("demo: %q is not a district or city code in the division data", opts.Region)
	}
	townships := tree.Descendants(region.Code, regions.Township)
	if len(townships) == 0 {
		return Result{}, fmt.Errorf("demo: the division data lists no townships under %s %s", region.Code, region.Name)
	}
	res := Result{Region: region, Institutions: map[regions.InstitutionType]int{}}
	if loaded, err := alreadyLoaded(ctx, db, region.Code); err != nil || loaded {
		res.AlreadyLoaded = loaded
		return res, err
	}

	ctx = scope.WithPrincipal(ctx, scope.System())
	now := func() time.Time { return opts.Now }
	log := audit.New(db, now)
	r := newRand(opts.Seed)
	plan := planDistrict(r, tree, region, townships, opts.People)

	inst, err := createInstitutions(ctx, regions.NewInstitutions(db, tree, log, now), plan)
	if err != nil {
		return res, err
	}
	for _, in := range inst.all {
		res.Institutions[in.Type]++
	}
	if res.People, err = insertResidents(ctx, db, r, plan, inst, opts.Now); err != nil {
		return res, err
	}
	if res.Logins, err = createUsers(ctx, db, tree, now, opts.Hash, plan, inst); err != nil {
		return res, err
	}
	if res.Screening, err = loadScreening(ctx, db, tree, now, r, plan, inst); err != nil {
		return res, err
	}
	err = log.RecordOutside(ctx, audit.Entry{Action: "demo.load", Detail: fmt.Sprintf("region %s, %d institutions, %d residents, %d users",
		region.Code, len(inst.all), res.People, len(res.Logins))})
	return res, err
}

// newRand returns the generator every choice is drawn from.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed_5a0b)) }

// alreadyLoaded reports whether the region has a bureau or a demo username is taken.
func alreadyLoaded(ctx context.Context, db *storage.DB, region string) (bool, error) {
	var a storage.Args
	var n int
	q := `SELECT (SELECT COUNT(*) FROM institutions WHERE type = ` + a.Add(string(regions.Bureau)) + ` AND region_code = ` + a.Add(region) + `)
		+ (SELECT COUNT(*) FROM users WHERE username IN (`
	for i, u := range Usernames {
		if i > 0 {
			q += ", "
		}
		q += a.Add(u)
	}
	if err := db.QueryRowContext(ctx, q+`))`, a.Values()...).Scan(&n); err != nil {
		return false, fmt.Errorf("demo: look for earlier demo data: %w", err)
	}
	return n > 0, nil
}

// township is one township of the plan with its share of the residents.
type township struct {
	regions.Division
	villages  []regions.Division // empty where the data stops at townships
	residents int
	points    int // sampling points
}

// plan is the shape of the district before anything is written.
type plan struct {
	region    regions.Division
	townships []township
}

// planDistrict spreads people over the townships in proportion to their
// number of villages (a stand-in for population, which the data lacks) with
// some seeded variation, and gives each township one sampling point per
// ResidentsPerSamplingPoint residents, at least one.
func planDistrict(r *rand.Rand, tree *regions.Tree, region regions.Division, divs []regions.Division, people int) plan {
	p := plan{region: region}
	weights := make([]float64, len(divs))
	var total float64
	for i, d := range divs {
		t := township{Division: d, villages: tree.Descendants(d.Code, regions.Village)}
		p.townships = append(p.townships, t)
		weights[i] = float64(max(len(t.villages), 3)) * (0.7 + 0.6*r.Float64())
		total += weights[i]
	}
	// Largest-remainder rounding, so the shares add up to people exactly.
	assigned := 0
	rem := make([]float64, len(divs))
	for i := range p.townships {
		exact := float64(people) * weights[i] / total
		p.townships[i].residents = int(exact)
		rem[i] = exact - math.Floor(exact)
		assigned += p.townships[i].residents
	}
	for ; assigned < people; assigned++ {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		p.townships[best].residents++
		rem[best] = -1
	}
	for i := range p.townships {
		t := &p.townships[i]
		t.points = max(1, int(math.Round(float64(t.residents)/ResidentsPerSamplingPoint)))
	}
	return p
}

// institutions are the created institutions, by role in the demo.
type institutions struct {
	all       []regions.Institution
	bureau    regions.Institution
	hospital  regions.Institution
	lab       regions.Institution
	isolation regions.Institution
	centres   map[string]regions.Institution   // township code → its health centre
	points    map[string][]regions.Institution // township code → its sampling points
}

// createInstitutions registers the district's institutions through the
// register, so they pass the same rules and audit as any other.
func createInstitutions(ctx context.Context, reg *regions.Institutions, p plan) (*institutions, error) {
	out := &institutions{centres: map[string]regions.Institution{}, points: map[string][]regions.Institution{}}
	add := func(in regions.InstitutionInput) (regions.Institution, error) {
		created, err := reg.Create(ctx, in)
		if err != nil {
			return created, fmt.Errorf("demo: create institution %s: %w", in.Name, err)
		}
		out.all = append(out.all, created)
		return created, nil
	}
	name := p.region.Name
	first := p.townships[0]
	var err error
	bureauName := name + "卫生健康局"
	if p.region.Level == regions.City {
		bureauName = name + "卫生健康委员会"
	}
	if out.bureau, err = add(regions.InstitutionInput{Name: bureauName, Type: regions.Bureau, RegionCode: p.region.Code,
		Address: first.Name + "人民路1号", Phone: "0577-63480001"}); err != nil {
		return nil, err
	}
	under := func(t regions.InstitutionType, n, addr, phone string) (regions.Institution, error) {
		return add(regions.InstitutionInput{Name: n, Type: t, RegionCode: p.region.Code, ParentID: out.bureau.ID, Address: addr, Phone: phone})
	}
	if _, err = under(regions.CDC, name+"疾病预防控制中心", first.Name+"建设路18号", "0577-63480120"); err != nil {
		return nil, err
	}
	if out.hospital, err = under(regions.Hospital, name+"人民医院", first.Name+"海滨路66号", "0577-63480999"); err != nil {
		return nil, err
	}
	if out.lab, err = under(regions.Lab, name+"核酸检测实验室", first.Name+"建设路20号", "0577-63480121"); err != nil {
		return nil, err
	}
	if out.isolation, err = under(regions.IsolationSite, name+"集中隔离医学观察点", first.Name+"望海路8号", "0577-63480188"); err != nil {
		return nil, err
	}
	for _, t := range p.townships {
		centre, err := add(regions.InstitutionInput{Name: centreName(t.Name), Type: regions.TownshipHealthCentre, RegionCode: t.Code,
			ParentID: out.bureau.ID, Address: t.Name + "中心街1号"})
		if err != nil {
			return nil, err
		}
		out.centres[t.Code] = centre
		for k := range t.points {
			code, place := t.Code, t.Name
			if len(t.villages) > 0 {
				v := t.villages[k*len(t.villages)/t.points]
				code, place = v.Code, shortVillage(v.Name)
			}
			pointName := fmt.Sprintf("%s核酸采样点", place)
			if len(t.villages) == 0 || t.points > len(t.villages) {
				pointName = fmt.Sprintf("%s第%d核酸采样点", place, k+1)
			}
			point, err := add(regions.InstitutionInput{Name: pointName, Type: regions.SamplingPoint, RegionCode: code,
				ParentID: centre.ID, Address: place + "文化礼堂"})
			if err != nil {
				return nil, err
			}
			out.points[t.Code] = append(out.points[t.Code], point)
		}
	}
	return out, nil
}

// centreName names a township's health centre: streets (街道) have a
// community health service centre, towns and townships a 卫生院.
func centreName(township string) string {
	if strings.HasSuffix(township, "街道") {
		return township + "社区卫生服务中心"
	}
	return township + "卫生院"
}

// createUsers makes one user per role through the user store.
func createUsers(ctx context.Context, db *storage.DB, tree *regions.Tree, now func() time.Time, hash auth.HashParams, p plan, inst *institutions) ([]Login, error) {
	users := auth.New(db, tree, nil, now, auth.Options{Hash: hash})
	district := p.region
	first := p.townships[0].Code
	centre, point := inst.centres[first], inst.points[first][0]
	specs := []struct {
		username, display string
		role              scope.Role
		institution       regions.Institution
	}{
		{"admin", "卫健局管理员", scope.BureauAdmin, regions.Institution{}},
		{"cdc", "疾控中心流调员", scope.Epidemiologist, regions.Institution{}},
		{"hospital", "人民医院院感科", scope.InstitutionStaff, inst.hospital},
		{"sampler", "采样员", scope.Sampler, point},
		{"lab", "实验室检测员", scope.Lab, inst.lab},
		{"isolation", "隔离点工作人员", scope.IsolationStaff, inst.isolation},
		{"inspector", "卫生监督员", scope.Inspector, regions.Institution{}},
		{"doctor", "家庭医生", scope.FamilyDoctor, centre},
	}
	var logins []Login
	for _, s := range specs {
		in := auth.NewUser{Username: s.username, DisplayName: s.display, Password: Password, Roles: []scope.Role{s.role}}
		login := Login{Username: s.username, Role: s.role}
		if s.institution.ID != 0 {
			in.InstitutionID = s.institution.ID
			login.Scope, login.Institution = s.institution.RegionCode, s.institution.Name
		} else {
			in.RegionCode = district.Code
			login.Scope = district.Code + " " + district.Name
		}
		if _, err := users.CreateUser(ctx, in); err != nil {
			return logins, fmt.Errorf("demo: create user %s: %w", s.username, err)
		}
		logins = append(logins, login)
	}
	return logins, nil
}
