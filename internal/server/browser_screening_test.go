package server

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/shaobing/shaobing/internal/browsertest"
)

// TestBrowserSamplerOfflineQueue is the browser test of the
// sampler page: a sampler registers online, the network drops, three more
// registrations queue in the browser (with a reload of the page in between,
// served by its service worker), and when the network returns all three are
// stored exactly once.
func TestBrowserSamplerOfflineQueue(t *testing.T) {
	w := newScreeningWorld(t)
	ctx := browsertest.New(t)
	browsertest.Login(t, ctx, w.srv.URL, "sampler.a", e2ePassword)
	browsertest.Do(t, ctx, chromedp.Navigate(w.srv.URL+"/screening/sampler"))
	wait := func(cond string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v\n%s", cond, err, browsertest.Where(ctx))
		}
	}
	status := func(attr, want string) {
		t.Helper()
		wait(fmt.Sprintf(`document.querySelector('[data-part=status]').getAttribute('data-%s') === %q`, attr, want))
	}
	js := func(expr string) { browsertest.Run(t, ctx, chromedp.Evaluate[any](expr)) }
	wait(`document.querySelector('[data-sampler]')?.getAttribute('data-ready') === 'true'`)

	// A USB scanner types the tube code and Enter.
	browsertest.Do(t, ctx, chromedp.SendKeys(chromedp.CSS("#sampler-tube"), "t900001\r"))
	wait(`document.querySelector('[data-sampler]').getAttribute('data-tube') === 'T900001'`)
	n := 0
	register := func(name string) {
		t.Helper()
		n++
		browsertest.Do(t, ctx,
			chromedp.SendKeys(chromedp.CSS("#sampler-id-number"), residentID(fmt.Sprintf("33030519900101%03d", n))),
			chromedp.SendKeys(chromedp.CSS("#sampler-name"), name),
			chromedp.SendKeys(chromedp.CSS("#sampler-phone"), "13800138000"))
		js(`(() => { const r = document.getElementById('sampler-region'); if (!r.value) r.value = r.options[1].value; return true })()`)
		wait(`!document.querySelector('[data-part=register]').disabled`)
		browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("[data-part=register]")))
		wait(`document.getElementById('sampler-id-number').value === ''`)
	}
	register("张三")
	status("synced", "1")
	if got := w.rows(t, "specimens"); got != 1 {
		t.Fatalf("%d specimens online, want 1", got)
	}
	// The service worker that lets the page load offline is in place.
	wait(`document.querySelector('[data-sampler]').getAttribute('data-offline-ready') === 'true'`)

	// The network drops: the browser itself is offline.
	offline := func(off bool) {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &off,
			MatchedNetworkConditions:    []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}}}); err != nil {
			t.Fatalf("network conditions: %v", err)
		}
		if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: off, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
			t.Fatalf("network state: %v", err)
		}
	}
	offline(true)
	register("李四")
	register("王五")
	// The phone reloads the page with no network: it comes from the
	// service worker, with the queue and the current tube intact.
	browsertest.Do(t, ctx, chromedp.Reload())
	wait(`document.querySelector('[data-sampler]')?.getAttribute('data-ready') === 'true'`)
	status("pending", "2")
	wait(`document.querySelector('[data-sampler]').getAttribute('data-tube') === 'T900001'`)
	register("赵六")
	status("pending", "3")
	wait(`document.querySelector('[data-sampler]').getAttribute('data-tube-count') === '4'`)
	if got := w.rows(t, "specimens"); got != 1 {
		t.Fatalf("%d specimens while offline, want still 1", got)
	}

	// The network returns: the queue syncs, each registration once.
	offline(false)
	status("pending", "0")
	status("synced", "4")
	status("attention", "0")
	if got := w.rows(t, "specimens"); got != 4 {
		t.Fatalf("%d specimens after sync, want 4", got)
	}
	var distinct int
	if err := w.db.QueryRow("SELECT COUNT(DISTINCT person_id) FROM specimens").Scan(&distinct); err != nil || distinct != 4 {
		t.Fatalf("%d distinct persons (%v), want 4", distinct, err)
	}
	// The page's client ids are version-7 UUIDs: they start with the time
	// they were made, in milliseconds (sampled_at is that time to the second).
	rows, err := w.db.Query("SELECT client_id, sampled_at FROM specimens")
	if err != nil {
		t.Fatal(err)
	}
	v7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for rows.Next() {
		var id string
		var sampled int64
		if err := rows.Scan(&id, &sampled); err != nil {
			t.Fatal(err)
		}
		made, err := strconv.ParseInt(strings.ReplaceAll(id[:13], "-", ""), 16, 64)
		if !v7.MatchString(id) || err != nil || made < sampled || made >= sampled+1000 {
			t.Errorf("client id %s (sampled at %d): want a version-7 UUID made then", id, sampled)
		}
	}
	rows.Close()
	// A reload resends nothing: the queue is empty and the server has four.
	browsertest.Do(t, ctx, chromedp.Reload())
	wait(`document.querySelector('[data-sampler]')?.getAttribute('data-ready') === 'true'`)
	status("pending", "0")
	if got := w.rows(t, "specimens"); got != 4 {
		t.Fatalf("%d specimens after reload, want 4", got)
	}

	// The service worker kept a copy of the page, which names the account.
	// Signing out forgets it; the hashed static files stay cached.
	cached := func(path string) bool {
		t.Helper()
		return browsertest.Run(t, ctx, chromedp.Evaluate[bool](`caches.match(`+strconv.Quote(path)+`).then(r => !!r)`, chromedp.EvalAwaitPromise))
	}
	if !cached("/screening/sampler") {
		t.Fatal("the sampler page was never cached for offline use")
	}
	script := browsertest.Run(t, ctx, chromedp.Evaluate[string](`document.querySelector('script[src*="sampler"]').getAttribute('src')`))
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	wait(`document.documentElement.getAttribute('data-offline-pages') === 'forgotten'`)
	if cached("/screening/sampler") {
		t.Error("after signing out, the sampler page (with the account's name) is still cached")
	}
	if !cached(script) {
		t.Errorf("after signing out, the static file %s is no longer cached", script)
	}
}
