package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's Chromium, headless, through the DevTools
// protocol. `make test` installs it (apt-get install chromium); without it
// they skip and say why.
const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // uncaught exceptions and console errors
}

// watch is run in every page before its own scripts: it records Content
// Security Policy violations, which Chromium reports nowhere else that a
// test can read.
const watch = `window.__csp = []; document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s is missing (apt-get install chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// This machine's network is closed: without these Chromium keeps
		// trying to reach Google's services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A headless tab is never "hidden", but keep its timers exact anyway.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type != "error" {
				return
			}
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = "console.error: " + strings.Join(parts, " ")
		default:
			return
		}
		b.mu.Lock()
		b.problems = append(b.problems, msg)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watch})
		return err
	}))
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval runs a JavaScript expression in the page and decodes its value into v.
// (chromedp.Poll would need 'unsafe-eval', which the page's CSP forbids;
// Runtime.evaluate from DevTools is not subject to it.)
func (b *browser) eval(expr string, v any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// js evaluates expr and returns its value as a string.
func (b *browser) js(expr string) string {
	b.t.Helper()
	var v any
	if err := b.eval(expr, &v); err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if s, ok := v.(string); ok {
		return s
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// waitJS waits until expr is truthy in the page.
func (b *browser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		last = b.eval("!!("+expr+")", &ok)
		if last == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("timed out after %s waiting for %s (%s; last error %v)\npage text:\n%s", timeout, what, expr, last, b.js("document.body.innerText"))
}

// checkClean fails the test on uncaught exceptions, console errors and CSP
// violations seen so far.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	problems := append([]string(nil), b.problems...)
	b.mu.Unlock()
	var csp []string
	if err := b.eval("window.__csp || []", &csp); err == nil {
		for _, c := range csp {
			problems = append(problems, "CSP violation: "+c)
		}
	}
	for _, p := range problems {
		// A failed poll is logged by Chromium itself as a console error
		// when the test makes the API fail on purpose.
		if strings.Contains(p, "Failed to load resource") {
			continue
		}
		b.t.Errorf("page: %s", p)
	}
}

// screenshot saves a PNG of the whole page under the test's temp dir and
// copies it to copyTo (when set) for people to look at.
func (b *browser) screenshot(name, copyTo string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		b.t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	p := filepath.Join(b.t.TempDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", p, len(png))
	if copyTo != "" {
		if err := os.WriteFile(copyTo, png, 0o644); err != nil {
			b.t.Logf("copying the screenshot to %s: %v", copyTo, err)
		} else {
			b.t.Logf("screenshot copied to %s", copyTo)
		}
	}
	return p
}

// q quotes s as a JavaScript string literal.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Selectors and expressions over the page's own structure: rows carry
// data-key (an endpoint's address, a backend's or member's name), cards the
// pool or VIP name.
func poolRow(pool, addr string) string {
	return fmt.Sprintf(`document.querySelector('#pools-body article[data-key=%s] tr[data-key=%s]')`, cssq(pool), cssq(addr))
}

func cssq(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`).Replace(s) + `"`
}

// rowState is the health word shown in a row ("up", "down", "unknown").
func rowState(row string) string {
	return `((r) => r && r.querySelector('.st') ? r.querySelector('.st').textContent : '')(` + row + `)`
}

func chromedpNavigate(url string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(url) }

func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)
}

// sendKeys types v into the field, as a person pasting a token would.
func sendKeys(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), v, chromedp.NodeVisible)
}

func emulateViewport(w, h int64) chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(w, h)
}

// colorScheme emulates prefers-color-scheme ("light" or "dark").
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}
