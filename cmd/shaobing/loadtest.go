package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/demo"
	"github.com/shaobing/shaobing/internal/loadgen"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/screening"
)

// The load's fixture: every name it makes starts with "loadtest", so it is
// found again by the next run and is easy to tell from real data.
const (
	loadtestPrefix   = "loadtest"
	loadtestPoolSize = 10 // 10合1, the usual pooling of a whole-city day
	loadtestAdmin    = "loadtest-admin"
	// loadtestCampaignDays is how long a load test campaign runs; a run
	// after that makes a new one.
	loadtestCampaignDays = 30
)

// randomPasswordHash hashes the load users' random passwords (see prepareLoadtest).
var randomPasswordHash = auth.HashParams{Memory: 1024, Time: 1, Threads: 1}

// cmdLoadtest prepares a load test fixture through the database and then
// drives a running server with it: a no-op baseline, then many samplers
// registering specimens at once. It prints throughput, latency percentiles
// and the server's memory, and fails when any request got no answer or one
// of an unexpected status.
func cmdLoadtest(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("loadtest", stdout)
	dbURL := dbFlag(fs)
	url := fs.String("url", "http://127.0.0.1:8080", "the running server (shaobing serve) to load")
	region := fs.String("region", demo.DefaultRegion, "the district whose townships get the sampling points (load its demo data first)")
	points := fs.Int("points", 64, "sampling points, each with a sampler and an API token")
	clients := fs.Int("clients", 256, "concurrent clients, each sending one request at a time over a kept-alive connection")
	duration := fs.Duration("duration", 30*time.Second, "measured time of each phase")
	warmup := fs.Duration("warmup", 3*time.Second, "unmeasured time before each phase's measurement")
	mode := fs.String("mode", "single", "single: one specimen per POST /api/v1/specimens; batch: --batch-size per POST /api/v1/specimens/batch")
	batchSize := fs.Int("batch-size", 50, "specimens per request in batch mode (the server takes up to 500)")
	clientIDs := fs.String("client-ids", "v7", "v7: time-ordered UUIDs, as the sampler page makes; v4: random UUIDs, as many other apps do")
	baseline := fs.Bool("baseline", true, "first measure the no-op GET /api/v1/me with as many clients")
	httpClient := fs.String("http", "raw", "raw: the load's own lean HTTP/1.1 client, which leaves more of a shared machine to the server; "+
		"std: Go's net/http (https:// URLs always use it)")
	rate := fs.Float64("rate", 0, "registration requests a second the clients send together at most, at even intervals, as samplers "+
		"through a day (0: each client sends again as soon as it is answered, the most the server takes)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	size := 0
	switch *mode {
	case "single":
	case "batch":
		if *batchSize < 1 {
			return errors.New("--batch-size must be positive")
		}
		size = *batchSize
	default:
		return fmt.Errorf("--mode %q: want single or batch", *mode)
	}
	switch {
	case *clientIDs != "v7" && *clientIDs != "v4":
		return fmt.Errorf("--client-ids %q: want v7 or v4", *clientIDs)
	case *httpClient != "raw" && *httpClient != "std":
		return fmt.Errorf("--http %q: want raw or std", *httpClient)
	case *points < 1 || *points > 999:
		return errors.New("--points must be from 1 to 999")
	case *clients < 1:
		return errors.New("--clients must be positive")
	case *duration <= 0 || *warmup < 0:
		return errors.New("--duration must be positive and --warmup not negative")
	case *rate < 0:
		return errors.New("--rate must not be negative")
	}
	// Progress goes before the report; JSON is for scripts, which want the report alone.
	progress := stdout
	if *asJSON {
		progress = io.Discard
	}
	fmt.Fprintf(progress, "preparing %d sampling points in %s through %s\n", *points, *region, *dbURL)
	fx, err := prepareLoadtest(ctx, *dbURL, *region, *points, time.Now().Add(24*time.Hour+2**warmup+2**duration))
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "campaign %d (%s); the persons sampled are numbered from %d on\n", fx.campaign.ID, fx.campaign.Name, fx.firstPerson)
	rep, err := loadgen.Run(ctx, loadgen.Config{
		URL: *url, Clients: *clients, Warmup: *warmup, Duration: *duration,
		CampaignID: fx.campaign.ID, PoolSize: fx.campaign.PoolSize, Points: fx.points, BatchSize: size,
		RandomClientIDs: *clientIDs == "v4", Baseline: *baseline, AdminToken: fx.adminToken, IDPrefix: fx.idPrefix, FirstPerson: fx.firstPerson,
		HTTPClient: *httpClient, Progress: progress, Rate: *rate,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if n := rep.Unexpected(); n > 0 {
		return fmt.Errorf("%d requests or specimens got no answer or an unexpected status", n)
	}
	return nil
}

// loadtestFixture is what the load needs from the database.
type loadtestFixture struct {
	campaign    screening.Campaign
	points      []loadgen.Point
	adminToken  string
	idPrefix    string // the district's code: the persons' ID numbers start with it
	firstPerson int64  // persons before it were sampled by earlier runs
}

// prepareLoadtest opens the database and makes (or finds) the fixture; the
// tokens it makes expire at tokensExpire, a day after the run, so they do
// not pile up as live credentials.
func prepareLoadtest(ctx context.Context, dbURL, region string, points int, tokensExpire time.Time) (loadtestFixture, error) {
	_, tree, db, err := openAuth(ctx, dbURL)
	if err != nil {
		return loadtestFixture{}, err
	}
	defer db.Close()
	// The load's users never sign in with a password; theirs are 192 random
	// bits, which need no key stretching. With the default cost, 64 users
	// would take a minute to make.
	users := auth.New(db, tree, nil, time.Now, auth.Options{Hash: randomPasswordHash})
	svc := screening.Standalone(db, tree, nil)
	defer svc.Close()
	return setupLoadtest(scope.WithPrincipal(ctx, scope.System()), svc, users, tree, region, points, time.Now(), tokensExpire)
}

// setupLoadtest finds or makes, as the system: a campaign over the district
// with pool size 10, the sampling points spread over its townships, a
// sampler per point and an admin; then it makes a fresh API token for each.
// Running it again finds what the last run made.
func setupLoadtest(ctx context.Context, svc *screening.Service, users *auth.Service, tree *regions.Tree, region string, n int,
	now, tokensExpire time.Time) (loadtestFixture, error) {
	district, ok := tree.Lookup(region)
	if !ok || district.Level != regions.District {
		return loadtestFixture{}, fmt.Errorf("--region %s: want a district code listed in the division data", region)
	}
	townships := tree.Descendants(region, regions.Township)
	if len(townships) == 0 {
		return loadtestFixture{}, fmt.Errorf("the division data lists no townships under %s %s", region, district.Name)
	}
	c, err := loadtestCampaign(ctx, svc, region, now)
	if err != nil {
		return loadtestFixture{}, err
	}
	existing, err := campaignPoints(ctx, svc, c.ID)
	if err != nil {
		return loadtestFixture{}, err
	}
	fx := loadtestFixture{campaign: c, idPrefix: region[:6]}
	for i := range n {
		township := townships[i%len(townships)]
		name := fmt.Sprintf("%s采样点%03d", loadtestPrefix, i+1)
		pt, ok := existing[name]
		if !ok {
			if pt, err = svc.CreateSamplingPoint(ctx, screening.NewSamplingPoint{CampaignID: c.ID, Name: name,
				RegionCode: township.Code, Address: "压力测试", Samplers: 1}); err != nil {
				return loadtestFixture{}, fmt.Errorf("sampling point %s: %w", name, err)
			}
		}
		sampler, err := loadtestUser(ctx, users, fmt.Sprintf("%s-sampler-%03d", loadtestPrefix, i+1), scope.Sampler, "", pt.InstitutionID)
		if err != nil {
			return loadtestFixture{}, err
		}
		_, token, err := users.CreateToken(ctx, sampler.ID, loadtestPrefix, tokensExpire)
		if err != nil {
			return loadtestFixture{}, fmt.Errorf("token for %s: %w", sampler.Username, err)
		}
		villages := make([]string, 0, 32)
		for _, v := range tree.Descendants(pt.RegionCode, regions.Village) {
			villages = append(villages, v.Code)
		}
		if len(villages) == 0 {
			villages = append(villages, pt.RegionCode) // the data stops at the township: residents are placed there
		}
		fx.points = append(fx.points, loadgen.Point{ID: pt.ID, Token: token, Villages: villages})
	}
	admin, err := loadtestUser(ctx, users, loadtestAdmin, scope.BureauAdmin, region, 0)
	if err != nil {
		return loadtestFixture{}, err
	}
	if _, fx.adminToken, err = users.CreateToken(ctx, admin.ID, loadtestPrefix, tokensExpire); err != nil {
		return loadtestFixture{}, fmt.Errorf("token for %s: %w", admin.Username, err)
	}
	// Every run samples persons nobody sampled in the campaign yet: its
	// coverage counts how many earlier runs used.
	cov, err := svc.Coverage(ctx, c.ID, region)
	if err != nil {
		return loadtestFixture{}, err
	}
	fx.firstPerson = cov.Sampled
	return fx, nil
}

// loadtestCampaign finds the open load test campaign of the region that runs
// until well after now, or starts one.
func loadtestCampaign(ctx context.Context, svc *screening.Service, region string, now time.Time) (screening.Campaign, error) {
	name := loadtestPrefix + " " + region
	cursor := ""
	for {
		list, next, err := svc.Campaigns(ctx, screening.CampaignQuery{State: "active", Cursor: cursor, Limit: 200})
		if err != nil {
			return screening.Campaign{}, err
		}
		for _, c := range list {
			if c.Name == name && slices.Equal(c.RegionCodes, []string{region}) && c.PoolSize == loadtestPoolSize &&
				c.StartsAt.Before(now) && c.EndsAt.After(now.Add(24*time.Hour)) {
				return c, nil
			}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	start := now.Add(-time.Hour).Truncate(time.Minute)
	c, err := svc.CreateCampaign(ctx, screening.NewCampaign{Name: name, Pathogen: screening.SARSCoV2, RegionCodes: []string{region},
		PoolSize: loadtestPoolSize, StartsAt: start, EndsAt: start.AddDate(0, 0, loadtestCampaignDays)})
	if err != nil {
		return screening.Campaign{}, fmt.Errorf("load test campaign: %w", err)
	}
	return c, nil
}

// campaignPoints returns a campaign's sampling points by name.
func campaignPoints(ctx context.Context, svc *screening.Service, campaignID int64) (map[string]screening.SamplingPoint, error) {
	out := make(map[string]screening.SamplingPoint)
	cursor := ""
	for {
		list, next, err := svc.SamplingPoints(ctx, screening.PointQuery{CampaignID: campaignID, Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, pt := range list {
			out[pt.Name] = pt
		}
		if cursor = next; cursor == "" {
			return out, nil
		}
	}
}

// loadtestUser finds the user or creates it with the role and scope (a
// region, or an institution). A found user must have that role and scope:
// the load would otherwise act with other rights than it reports.
func loadtestUser(ctx context.Context, users *auth.Service, username string, role scope.Role, region string, institutionID int64) (auth.User, error) {
	u, err := users.UserByUsername(ctx, username)
	switch {
	case err == nil:
		if !slices.Contains(u.Roles, role) || u.InstitutionID != institutionID || (region != "" && u.RegionCode != region) || u.Disabled {
			return auth.User{}, fmt.Errorf("user %s exists with other rights (roles %v, region %s, institution %d, disabled %v); remove or fix it",
				username, u.Roles, u.RegionCode, u.InstitutionID, u.Disabled)
		}
		return u, nil
	case !apperr.Is(err, apperr.NotFound):
		return auth.User{}, fmt.Errorf("user %s: %w", username, err)
	}
	// Nobody signs in with the password: the load uses API tokens.
	secret := make([]byte, 24)
	_, _ = crand.Read(secret) // never fails (crypto/rand since Go 1.24)
	u, err = users.CreateUser(ctx, auth.NewUser{Username: username, DisplayName: "压力测试 " + username,
		Password: base64.RawURLEncoding.EncodeToString(secret), Roles: []scope.Role{role}, RegionCode: region, InstitutionID: institutionID})
	if err != nil {
		return auth.User{}, fmt.Errorf("user %s: %w", username, err)
	}
	return u, nil
}
