package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/browsertest"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
)

// pagesWorld is newWorld plus an institution, a third person and three
// deadlines: one overdue and one due within the day in 北岙街道, one due in
// three days in 灵昆街道.
type pagesWorld struct {
	*world
	institution  regions.Institution
	overdueTitle string
}

func newPagesWorld(t *testing.T) *pagesWorld {
	t.Helper()
	w := &pagesWorld{world: newWorld(t), overdueTitle: "召回复核：北岙第一采样点"}
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	sys := scope.WithPrincipal(context.Background(), scope.System())
	log := audit.New(w.db, time.Now)
	if w.institution, err = regions.NewInstitutions(w.db, tree, log, time.Now).Create(sys, regions.InstitutionInput{
		Name: "北岙街道社区卫生服务中心", Type: regions.TownshipHealthCentre, RegionCode: "330305001"}); err != nil {
		t.Fatalf("create institution: %v", err)
	}
	reg := people.NewRegistry(w.db, tree, log, time.Now)
	if _, _, err := reg.Register(sys, people.NewPerson{IDNumber: residentID("33030520150302345"), Name: "李四", NoPhone: true, RegionCode: "330305"}); err != nil {
		t.Fatalf("register: %v", err)
	}

	now := time.Now()
	engine := deadlines.New(w.db, settings.New(w.db, log, time.Now), time.Now)
	for _, d := range []deadlines.Deadline{
		{Kind: deadlines.Recall, SubjectType: "person", SubjectID: itoa(w.personA.ID), Title: w.overdueTitle,
			RegionCode: "330305001", DueAt: now.Add(-time.Minute)},
		{Kind: deadlines.InvestigationCore, SubjectType: "person", SubjectID: itoa(w.personA.ID), Title: "核心信息调查",
			RegionCode: "330305001", DueAt: now.Add(12 * time.Hour)},
		{Kind: deadlines.StaffTest, SubjectType: "staff", SubjectID: "7", Title: "员工核酸检测",
			RegionCode: "330305002", DueAt: now.Add(72 * time.Hour)},
	} {
		if err := w.db.InTx(sys, func(tx *sql.Tx) error {
			_, err := engine.Open(sys, tx, d)
			return err
		}); err != nil {
			t.Fatalf("open %s: %v", d.Kind, err)
		}
	}
	// The scheduler's pass moves the one whose due time has passed.
	if res, err := engine.Tick(sys); err != nil || res.Overdue != 1 || res.Escalated != 0 {
		t.Fatalf("tick: %+v, %v; want exactly one overdue", res, err)
	}
	return w
}

// choose picks value in the select matched by css and fires its change
// event, as a person's choice does (htmx and app.js listen for it).
func choose(t *testing.T, ctx context.Context, css, value string) {
	t.Helper()
	sel, _ := json.Marshal(css)
	val, _ := json.Marshal(value)
	ok := browsertest.Run(t, ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const s = document.querySelector(%s);
		if (!s || s.disabled || !Array.from(s.options).some(o => o.value === %s)) return false;
		s.value = %s;
		s.dispatchEvent(new Event("change", {bubbles: true}));
		return true;
	})()`, sel, val, val)))
	if !ok {
		t.Fatalf("cannot choose %s in %s (missing, disabled or no such option)\n%s", value, css, browsertest.Where(ctx))
	}
}

// submit clicks css and waits for the page the browser navigates to.
func submit(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browsertest.ActionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s: %v\n%s", css, err, browsertest.Where(ctx))
	}
}

// TestBrowserMainPages opens each module's main page in one headless
// Chromium: the dashboard's figures and chart, the inbox's overdue badge,
// the institution form's region picker, the audit log and its verification,
// the admin pages, the print layout of the people list, and what a township
// user may not see.
func TestBrowserMainPages(t *testing.T) {
	ctx := browsertest.New(t) // before seeding, so a missing Chromium skips at once
	w := newPagesWorld(t)
	base := w.srv.URL
	browsertest.Login(t, ctx, base, "district.admin", e2ePassword)

	t.Run("home", func(t *testing.T) {
		browsertest.Do(t, ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS(".grid .stat .stat-value")),
			// ECharts draws with the SVG renderer once echarts and app.js have run.
			chromedp.WaitVisible(chromedp.CSS(".chart[data-chart] svg")),
		)
		// Open, due soon, overdue, escalated: both 北岙 duties and the 灵昆 one.
		if got, want := browsertest.Texts(t, ctx, ".grid .stat .stat-value"), []string{"2", "1", "1", "0"}; !slices.Equal(got, want) {
			t.Errorf("stat cards %q, want %q", got, want)
		}
		if bars := browsertest.Run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll(".chart svg path").length`)); bars < 3 {
			t.Errorf("the chart has %d paths, want at least a bar for each of 3 kinds", bars)
		}
	})

	t.Run("inbox", func(t *testing.T) {
		browsertest.Do(t, ctx,
			chromedp.Navigate(base+"/inbox"),
			chromedp.WaitVisible(chromedp.CSS("table.list tbody tr")),
		)
		if rows := browsertest.Texts(t, ctx, "table.list tbody tr"); len(rows) != 3 {
			t.Errorf("inbox rows %q, want the 3 unresolved deadlines", rows)
		}
		title, _ := json.Marshal(w.overdueTitle)
		badge := browsertest.Run(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
			const tr = Array.from(document.querySelectorAll("table.list tbody tr")).find(r => r.innerText.includes(%s));
			const b = tr && tr.querySelector(".badge.danger");
			return b ? b.innerText.trim() : "";
		})()`, title)))
		if badge != "已逾期" {
			t.Errorf("the overdue deadline's .badge.danger says %q, want 已逾期", badge)
		}
	})

	t.Run("institutions and the region picker", func(t *testing.T) {
		browsertest.Do(t, ctx,
			chromedp.Navigate(base+"/institutions"),
			chromedp.WaitVisible(chromedp.CSS("table.list tbody tr")),
		)
		if h := browsertest.Text(t, ctx, "h1"); h != "机构管理" {
			t.Errorf("heading %q, want 机构管理", h)
		}
		if rows := browsertest.Texts(t, ctx, "table.list tbody tr"); len(rows) != 1 || !strings.Contains(rows[0], w.institution.Name) {
			t.Errorf("institution rows %q, want the seeded one", rows)
		}
		const township, village, name = "330305001", "330305001003", "银海社区卫生服务站"
		browsertest.Do(t, ctx,
			chromedp.Click(chromedp.CSS(`.page-head a[href="/institutions/new"]`), chromedp.NodeVisible),
			// app.js hides the code input and shows the cascading selects.
			chromedp.WaitVisible(chromedp.CSS("#region_code_0")),
			chromedp.SendKeys(chromedp.CSS("#name"), name),
			chromedp.SetValue(chromedp.CSS("#type"), string(regions.VillageClinic)),
		)
		if villages := browsertest.Run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#region_code_1 option[value]:not([value=''])").length`)); villages != 0 {
			t.Fatalf("the village select has %d choices before a township is chosen", villages)
		}
		choose(t, ctx, "#region_code_0", township)
		// htmx fills the village select from /regions/options.
		browsertest.Do(t, ctx,
			chromedp.WaitReady(chromedp.CSS(`#region_code_1 option[value="`+village+`"]`)),
			chromedp.WaitEnabled(chromedp.CSS("#region_code_1")),
		)
		if code := browsertest.Run(t, ctx, chromedp.Value(chromedp.CSS("input.region-code"))); code != township {
			t.Errorf("after the township the code is %q, want %s", code, township)
		}
		choose(t, ctx, "#region_code_1", village)
		submit(t, ctx, `form.form button.btn.primary[type="submit"]`)
		browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS("h1")))
		if h := browsertest.Text(t, ctx, "h1"); h != name {
			t.Errorf("after saving the heading is %q, want the new institution's detail page\n%s", h, browsertest.Where(ctx))
		}
		var got string
		if err := w.db.QueryRow("SELECT region_code FROM institutions WHERE name = $1", name).Scan(&got); err != nil || got != village {
			t.Errorf("saved institution's region_code %q (%v), want %s", got, err, village)
		}
	})

	t.Run("audit", func(t *testing.T) {
		browsertest.Do(t, ctx,
			chromedp.Navigate(base+"/audit"),
			chromedp.WaitVisible(chromedp.CSS("table.list tbody tr")),
		)
		rows := browsertest.Texts(t, ctx, "table.list tbody tr")
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "district.admin") }) {
			t.Errorf("audit rows lack the admin's own entries (sign-in, new institution):\n%s", strings.Join(rows, "\n"))
		}
		submit(t, ctx, `form[action*="verify"] button[type="submit"]`)
		browsertest.Do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".alert")))
		if msg := browsertest.Text(t, ctx, ".alert"); !strings.HasPrefix(msg, "日志链完整") {
			t.Errorf("verify report %q, want the intact-chain message", msg)
		}
	})

	t.Run("users and settings", func(t *testing.T) {
		for path, heading := range map[string]string{"/users": "用户管理", "/settings": "系统设置"} {
			browsertest.Do(t, ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
			if h := browsertest.Text(t, ctx, "h1"); h != heading {
				t.Errorf("%s heading %q, want %s", path, h, heading)
			}
		}
	})

	t.Run("people list prints", func(t *testing.T) {
		browsertest.Do(t, ctx,
			chromedp.Navigate(base+"/people"),
			chromedp.WaitVisible(chromedp.CSS("table.list tbody tr")),
		)
		pdf := browsertest.Run(t, ctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize()))
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 10_000 {
			t.Errorf("the printed people list is %d bytes starting %q, want a real PDF", len(pdf), pdf[:min(len(pdf), 8)])
		}
		// The print rules themselves: under print media the chrome is gone and the table stays.
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
			t.Fatalf("emulate print: %v", err)
		}
		shown := browsertest.Run(t, ctx, chromedp.Evaluate[map[string]bool](`(() => {
			const shown = sel => Array.from(document.querySelectorAll(sel)).some(e => getComputedStyle(e).display !== "none");
			return {nav: shown("nav.mainnav"), topbar: shown("header.topbar"), filters: shown("form.filters"),
				buttons: shown(".btn, button"), pager: shown(".pager"), table: shown("table.list"), heading: shown("h1")};
		})()`))
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
			t.Fatalf("end print emulation: %v", err)
		}
		for part, want := range map[string]bool{"nav": false, "topbar": false, "filters": false, "buttons": false, "pager": false, "table": true, "heading": true} {
			if shown[part] != want {
				t.Errorf("printed, %s shown = %v, want %v", part, shown[part], want)
			}
		}
	})

	t.Run("township user", func(t *testing.T) {
		submit(t, ctx, `header .user form button[type="submit"]`) // sign out
		browsertest.Login(t, ctx, base, "beiao.cdc", e2ePassword)
		browsertest.Do(t, ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS(".grid .stat .stat-value")),
		)
		// Only 北岙街道's duties: the 灵昆 one is out of scope.
		if got, want := browsertest.Texts(t, ctx, ".grid .stat .stat-value"), []string{"1", "1", "1", "0"}; !slices.Equal(got, want) {
			t.Errorf("township stat cards %q, want %q", got, want)
		}
		if nav := browsertest.Texts(t, ctx, "nav.mainnav a"); len(nav) == 0 || slices.Contains(nav, "用户管理") {
			t.Errorf("township user's navigation %q should not offer 用户管理", nav)
		}
		res := browsertest.Run(t, ctx, chromedp.NavigateResponse(base+"/users"))
		if res.Status != 403 {
			t.Errorf("township user at /users: %d, want 403", res.Status)
		}
		if u, err := url.Parse(res.URL); err != nil || u.Path != "/users" {
			t.Errorf("/users answered from %s, want no redirect", res.URL)
		}
	})
}
