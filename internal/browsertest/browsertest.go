// Package browsertest runs headless Chromium for tests that drive the real
// pages (through github.com/chromedp/chromedp). Each test gets its own browser
// with a fresh profile, a 60-second limit and cleanup; an uncaught JavaScript
// exception on any page fails the test.
//
// Chromium is found at $SHAOBING_CHROMIUM or /usr/bin/chromium. Without it
// the test is skipped, unless SHAOBING_TEST_STRICT is set: then it fails, so
// CI cannot pass by skipping.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Timeout bounds a whole browser test, so a page that never loads fails
// instead of hanging the suite.
const Timeout = 60 * time.Second

// ActionTimeout bounds each call of Do, so one missing element fails quickly
// and names itself instead of eating the whole Timeout.
const ActionTimeout = 15 * time.Second

// DefaultChromium is where Chromium is looked for when $SHAOBING_CHROMIUM is unset.
const DefaultChromium = "/usr/bin/chromium"

// Chromium returns the path of the Chromium binary, skipping the test when
// there is none (failing it under SHAOBING_TEST_STRICT).
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("SHAOBING_CHROMIUM")
	if path == "" {
		path = DefaultChromium
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		if os.Getenv("SHAOBING_TEST_STRICT") != "" {
			t.Fatalf("no Chromium at %s (set SHAOBING_CHROMIUM or install chromium)", path)
		}
		t.Skipf("no Chromium at %s: set SHAOBING_CHROMIUM or install chromium", path)
	}
	return path
}

// New starts a headless Chromium for the test and returns a context for one
// tab of it; pass it to chromedp.Do / chromedp.Run or to Do. The browser
// stops when the test ends. The browser asks for Simplified Chinese pages,
// the application's default.
func New(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	profile := t.TempDir() // removed after the browser has stopped (cleanups run last-in, first-out)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is tiny in containers
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.Flag("accept-lang", "zh-CN,zh"),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(profile),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromedp: "+format, args...)
	}))
	var exceptions jsErrors
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
		exceptions.report(t)
	})
	// Start the browser and open the tab now, so a broken install fails here.
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	exceptions.watch(tabCtx)
	return tabCtx
}

// jsErrors collects the uncaught JavaScript exceptions of a tab.
type jsErrors struct {
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func (e *jsErrors) watch(ctx context.Context) {
	events := chromedp.Events(ctx, runtime.ExceptionThrown) // subscribed before any page loads
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		for ev, err := range events {
			if err != nil {
				return // the tab has closed
			}
			msg := (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error()
			if d := ev.ExceptionDetails; d != nil && d.URL != "" {
				msg += " at " + d.URL
			}
			e.mu.Lock()
			e.msgs = append(e.msgs, msg)
			e.mu.Unlock()
		}
	}()
}

func (e *jsErrors) report(t testing.TB) {
	t.Helper()
	if e.done == nil {
		return
	}
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.msgs {
		t.Errorf("uncaught JavaScript %s", m)
	}
}

// Do runs the steps in order, each under ActionTimeout; on failure it fails
// the test with the step's number, the page's address and the start of its
// text, which usually says what went wrong (an error page, a login form).
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for i, step := range steps {
		sctx, cancel := context.WithTimeout(ctx, ActionTimeout)
		err := chromedp.Do(sctx, step)
		cancel()
		if err != nil {
			t.Fatalf("browser step %d of %d: %v\n%s", i+1, len(steps), err, Where(ctx))
		}
	}
}

// Run runs one action that returns a value, failing the test as Do does.
func Run[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, Where(ctx))
	}
	return v
}

// Where describes the tab's current page: its address and the first lines of
// its visible text, for failure messages.
func Where(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(page unknown: " + err.Error() + ")"
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		text = "(text unknown: " + err.Error() + ")"
	}
	if len(text) > 600 {
		text = text[:600] + "…"
	}
	return "page " + loc + ":\n" + strings.TrimSpace(text)
}

// Login signs in through the login page (form fields "username" and
// "password", submitted with Enter as a person would) and fails the test
// unless the browser then leaves the login page.
func Login(t testing.TB, ctx context.Context, baseURL, username, password string) {
	t.Helper()
	user, pass := chromedp.CSS(`input[name="username"]`), chromedp.CSS(`input[name="password"]`)
	Do(t, ctx,
		chromedp.Navigate(baseURL+"/login"),
		chromedp.WaitVisible(user),
		chromedp.SendKeys(user, username),
		chromedp.SendKeys(pass, password),
	)
	sctx, cancel := context.WithTimeout(ctx, ActionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(sctx, chromedp.SendKeys(pass, kb.Enter)); err != nil {
		t.Fatalf("login as %s: %v\n%s", username, err, Where(ctx))
	}
	loc := Run(t, ctx, chromedp.Location())
	if u, err := url.Parse(loc); err != nil || u.Path == "/login" {
		t.Fatalf("login as %s: still on the login page\n%s", username, Where(ctx))
	}
}

// Screenshot saves a PNG of the whole page at path, creating its directory.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	png := Run(t, ctx, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot saved to %s", path)
}

// DocScreenshot saves a screenshot named name into $SHAOBING_SCREENSHOT_DIR
// (how docs/screenshot.png for the README is made) and does nothing when
// that is unset.
func DocScreenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SHAOBING_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	if name == "" || name != filepath.Base(name) {
		t.Fatal(errors.New("browsertest: DocScreenshot wants a plain file name"))
	}
	Screenshot(t, ctx, filepath.Join(dir, name))
}

// Text returns the visible text of the first element matching a CSS selector.
func Text(t testing.TB, ctx context.Context, css string) string {
	t.Helper()
	return Run(t, ctx, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible))
}

// Texts returns the text of every element matching a CSS selector, in page
// order (an empty list when there is none).
func Texts(t testing.TB, ctx context.Context, css string) []string {
	t.Helper()
	sel, _ := json.Marshal(css)
	expr := fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.innerText.trim())`, sel)
	return Run(t, ctx, chromedp.Evaluate[[]string](expr))
}
