package server

import (
	"context"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/browsertest"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
)

// residentID makes a valid 18-character resident ID from its first 17.
func residentID(first17 string) string { return first17 + string(people.CheckChar(first17)) }

// TestBrowserPeopleMasked is the browser test: a bureau admin logs
// in, opens the people list and sees masked ID numbers and names, never the
// full ones; switching to English shows the English heading.
func TestBrowserPeopleMasked(t *testing.T) {
	s, db := buildTestServer(t)
	ctx := browsertest.New(t) // before seeding, so a missing Chromium skips at once

	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	sys := scope.WithPrincipal(context.Background(), scope.System())
	accounts := auth.New(db, tree, s.Shell(), time.Now, auth.Options{Hash: auth.HashParams{Memory: 8 * 1024, Time: 1, Threads: 1}})
	const password = "correct-horse-battery"
	if _, err := accounts.CreateUser(sys, auth.NewUser{Username: "dongtou.admin", DisplayName: "洞头区卫健局",
		Password: password, Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"}); err != nil {
		t.Fatalf("create admin: %v", err)
	}
	registry := people.NewRegistry(db, tree, audit.New(db, time.Now), time.Now)
	persons := []people.NewPerson{
		{IDNumber: residentID("33030519800101123"), Name: "张三丰", Phone: "13812345678", RegionCode: "330305"},
		{IDNumber: residentID("33030519920715234"), Name: "欧阳娜娜", Phone: "13987654321", RegionCode: "330305"},
		{IDNumber: residentID("33030520150302345"), Name: "李四", NoPhone: true, RegionCode: "330305"},
	}
	for _, p := range persons {
		if _, _, err := registry.Register(sys, p); err != nil {
			t.Fatalf("register %s: %v", p.IDNumber, err)
		}
	}

	srv := httptest.NewServer(s)
	defer srv.Close()
	browsertest.Login(t, ctx, srv.URL, "dongtou.admin", password)
	browsertest.Do(t, ctx,
		chromedp.Navigate(srv.URL+"/people"),
		chromedp.WaitVisible(chromedp.CSS("table.list tbody tr")),
	)
	rows := browsertest.Texts(t, ctx, "table.list tbody tr")
	if len(rows) != len(persons) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(persons), strings.Join(rows, "\n"))
	}
	names := browsertest.Texts(t, ctx, "table.list tbody td:nth-child(1)")
	ids := browsertest.Texts(t, ctx, "table.list tbody td:nth-child(2)")
	masked := regexp.MustCompile(`^33\*{14}[0-9X]{2}$`)
	for _, p := range persons {
		if !slices.Contains(ids, people.MaskIDNumber(p.IDNumber)) {
			t.Errorf("ID column %q lacks %s", ids, people.MaskIDNumber(p.IDNumber))
		}
		if !slices.Contains(names, people.MaskName(p.Name)) {
			t.Errorf("name column %q lacks %s", names, people.MaskName(p.Name))
		}
	}
	for _, id := range ids {
		if !masked.MatchString(id) {
			t.Errorf("ID cell %q is not masked like 33**************12", id)
		}
	}
	page := browsertest.Run(t, ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	for _, p := range persons {
		for _, secret := range []string{p.IDNumber, p.Name, p.Phone} {
			if secret != "" && strings.Contains(page, secret) {
				t.Errorf("the page shows %q in the clear", secret)
			}
		}
	}
	if h := browsertest.Text(t, ctx, "h1"); h != "人员登记" {
		t.Errorf("heading %q, want 人员登记", h)
	}
	browsertest.DocScreenshot(t, ctx, "screenshot.png")

	browsertest.Do(t, ctx,
		chromedp.Click(chromedp.CSS(".lang a")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] h1`)),
	)
	if h := browsertest.Text(t, ctx, "h1"); h != "People" {
		t.Errorf("English heading %q, want People", h)
	}
	if got := browsertest.Texts(t, ctx, "table.list tbody td:nth-child(2)"); !slices.Equal(got, ids) {
		t.Errorf("English page IDs %q, want the same masked %q", got, ids)
	}
}
