package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/browsertest"
	"github.com/shaobing/shaobing/internal/demo"
	"github.com/shaobing/shaobing/internal/regions"
)

// TestBrowserCampaignDashboard walks the bureau's screening pages on the
// demo district: the campaign list, the dashboard with its figures and
// turnaround chart, coverage by township, and the recall list, whose names
// are masked.
func TestBrowserCampaignDashboard(t *testing.T) {
	s, db := buildTestServer(t)
	ctx := browsertest.New(t) // before seeding, so a missing Chromium skips at once
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	res, err := demo.Load(context.Background(), db, tree, demo.Options{Region: "330305", People: 3000, Seed: 3,
		Hash: auth.HashParams{Memory: 8 * 1024, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	browsertest.Login(t, ctx, srv.URL, "admin", demo.Password)

	browsertest.Do(t, ctx, chromedp.Navigate(srv.URL+"/screening/campaigns"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`table.list a[href^="/screening/campaigns/"]`)), chromedp.WaitVisible(chromedp.CSS(".stat-value")))
	// The figures are the demo round's: every sampled person, the
	// positive tube's open recalls.
	var recalls int64
	if err := db.QueryRow("SELECT COUNT(*) FROM recalls").Scan(&recalls); err != nil || recalls == 0 {
		t.Fatalf("%d recalls in the demo (%v)", recalls, err)
	}
	stats := strings.Join(browsertest.Texts(t, ctx, ".stat-value"), " ")
	for _, want := range []string{itoa(int64(res.Screening.Specimens)), itoa(recalls) + " / " + itoa(recalls)} {
		if !strings.Contains(stats, want) {
			t.Errorf("dashboard figures %q lack %q", stats, want)
		}
	}
	// ECharts drew the turnaround chart.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`!!document.querySelector('.chart canvas, .chart svg')`)); err != nil {
		t.Errorf("no turnaround chart: %v\n%s", err, browsertest.Where(ctx))
	}
	browsertest.DocScreenshot(t, ctx, "screening-dashboard.png")

	browsertest.Do(t, ctx, chromedp.Navigate(srv.URL+"/screening/campaigns/"+itoa(res.Screening.CampaignID)+"/coverage"),
		chromedp.WaitVisible(chromedp.CSS("table.list")))
	if cov := browsertest.Text(t, ctx, "table.list"); !strings.Contains(cov, "北岙街道") || !strings.Contains(cov, "鹿西乡") {
		t.Errorf("coverage lacks the townships: %q", cov)
	}

	browsertest.Do(t, ctx, chromedp.Navigate(srv.URL+"/screening/recalls?campaign_id="+itoa(res.Screening.CampaignID)),
		chromedp.WaitVisible(chromedp.CSS("table.list")))
	list := browsertest.Text(t, ctx, "table.list")
	var name string
	if err := db.QueryRow(`SELECT p.name FROM recalls r JOIN persons p ON p.id = r.person_id ORDER BY r.id LIMIT 1`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(list, name) || !strings.Contains(list, string([]rune(name)[:1])+"*") {
		t.Errorf("recall list shows %q unmasked or not at all: %q", name, list)
	}
}
