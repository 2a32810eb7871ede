package console

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-rod/rod"
	"github.com/go-rod/rod/lib/launcher"
	"github.com/go-rod/rod/lib/proto"
)

// updateScreenshots rewrites the console's screenshots in docs/console/
// from the browser test:
//
//	go test ./internal/console -run TestInBrowser -update-screenshots
var updateScreenshots = flag.Bool("update-screenshots", false, "write the pages' screenshots to docs/console/")

// chromiumPath finds Debian's chromium (CI installs it: .ci/run). Without
// it the browser tests skip, except under CI, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("PATHUPDATE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium found: .ci/run installs Debian's chromium package; set PATHUPDATE_CHROMIUM to its path")
	}
	t.Skip("no chromium found (apt-get install -y chromium, or set PATHUPDATE_CHROMIUM)")
	return ""
}

// page is a headless Chromium tab on the console.
type page struct {
	t    *testing.T
	p    *rod.Page
	base string
}

// newPage starts Chromium with the flags this machine's closed network
// needs (no background connections, no first-run, a fresh profile) and
// saves a screenshot of the page when the test fails.
func newPage(t *testing.T, base string) *page {
	t.Helper()
	l := launcher.New().Bin(chromiumPath(t)).Headless(true).NoSandbox(true).Leakless(false).
		UserDataDir(t.TempDir()).
		Set("disable-gpu").Set("disable-quic").Set("no-first-run").
		Set("disable-background-networking").Set("disable-component-update").Set("disable-sync").
		Set("window-size", "1280,900")
	u, err := l.Launch()
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := rod.New().ControlURL(u)
	if err := b.Connect(); err != nil {
		l.Kill()
		t.Fatalf("connect to chromium: %v", err)
	}
	rp, err := b.Page(proto.TargetCreateTarget{URL: "about:blank"})
	if err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	p := &page{t: t, p: rp.Timeout(3 * time.Minute), base: base}
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshot(filepath.Join(t.ArtifactDir(), "failed.png"))
		}
		_ = b.Close()
		l.Kill()
		l.Cleanup()
	})
	return p
}

// check fails the test with what was being done and where.
func (p *page) check(what string, err error) {
	p.t.Helper()
	if err != nil {
		where := "?"
		if info, ierr := p.p.Info(); ierr == nil {
			where = info.URL
		}
		p.t.Fatalf("%s (at %s): %v", what, where, err)
	}
}

func (p *page) open(path string) {
	p.t.Helper()
	p.check("open "+path, p.p.Navigate(p.base+path))
	p.check("load "+path, p.p.WaitLoad())
}

func (p *page) element(sel string) *rod.Element {
	p.t.Helper()
	el, err := p.p.Timeout(30 * time.Second).Element(sel)
	p.check("find "+sel, err)
	return el
}

// text is the text of the first element sel matches, once it is there.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := p.element(sel).Text()
	p.check("read "+sel, err)
	return s
}

func (p *page) input(sel, text string) {
	p.t.Helper()
	p.check("type into "+sel, p.element(sel).Input(text))
}

// waitText waits until sel's text contains want (the overview reloads
// itself: this waits for the reload that shows it).
func (p *page) waitText(sel, want string) {
	p.t.Helper()
	js := fmt.Sprintf(`() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); }`, sel, want)
	p.check(fmt.Sprintf("wait for %q in %s", want, sel), p.p.Timeout(60*time.Second).Wait(rod.Eval(js)))
}

// absent fails when sel matches anything.
func (p *page) absent(sels ...string) {
	p.t.Helper()
	for _, sel := range sels {
		has, _, err := p.p.Has(sel)
		p.check("look for "+sel, err)
		if has {
			p.t.Fatalf("the page offers %s; a read-only console offers no action", sel)
		}
	}
}

// click clicks sel and waits for the page it leads to. The overview
// reloads its content in place: an element found just before a reload
// is detached from the page when the click comes, and is found again.
func (p *page) click(sel string) {
	p.t.Helper()
	for attempt := 1; ; attempt++ {
		el := p.element(sel)
		wait := p.p.WaitNavigation(proto.PageLifecycleEventNameLoad)
		err := el.Click(proto.InputMouseButtonLeft, 1)
		if err != nil && attempt < 5 && strings.Contains(err.Error(), "detached") {
			continue
		}
		p.check("click "+sel, err)
		wait()
		return
	}
}

func (p *page) screenshot(path string) {
	png, err := p.p.Screenshot(true, nil)
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot of the page: %s", path)
}

// doc saves the page for docs/console.md when -update-screenshots is set.
func (p *page) doc(name string) {
	if !*updateScreenshots {
		return
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	p.screenshot(filepath.Join(dir, name+".png"))
}

// TestInBrowser drives the console in headless Chromium as an operator
// would: log in, find a 40199 dead letter, register its order, replay it
// from the page, see it delivered on the waybill's timeline; pause and
// resume delivery; and see that a POST without the CSRF token is refused
// and that a read-only console offers no action.
func TestInBrowser(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{Token: testToken}})
	p := newPage(t, e.srv.URL)

	e.sb.AddOrder("SF100", "tok-sf100-000")
	e.sb.AddOrder("SF200", "tok-sf200-000")
	e.publish(t,
		event("SF100", "tok-sf100-000", 0, "已揽件"),
		event("SF100", "tok-sf100-000", 1, "运输中"),
		event("SF200", "tok-sf200-bad", 0, "已揽件"),                 // 9300507
		event("JD404", "tok-jd404-000", 0, "快递员 13800138000 已揽件"), // 40199: no order
		event("SF100", "tok-sf100-000", 2, "派送中"),
	)
	e.settled.waitSettled(t, 3, 2)
	e.refresh(t)

	// Log in.
	p.open("/")
	p.input("#token", testToken)
	p.doc("login")
	p.click("#login")
	p.waitText("h1", "Overview")
	p.waitText("#dead-total", "2")
	p.doc("overview")

	// Find the 40199 dead letter by filter.
	p.open("/deadletters")
	p.input(`#filter input[name="errcode"]`, "40199")
	p.click("#apply")
	p.waitText("#summary", "1 dead letters of 1 waybills")
	p.doc("deadletters")
	p.click(`#dead-letters a[href^="/deadletters/"]`)
	if got := p.text("#errcode"); !strings.Contains(got, "40199") {
		t.Fatalf("the dead letter's errcode reads %q", got)
	}
	if got := p.text("#action-msg"); !strings.Contains(got, "138****8000") {
		t.Fatalf("action_msg reads %q, want the phone number masked", got)
	}
	p.doc("deadletter")

	// The order exists now: replay it from the page, preview first.
	e.sb.AddOrder("JD404", "tok-jd404-000")
	p.click("#replay-one")
	p.waitText("#preview-summary", "would republish 1 dead letters of 1 waybills")
	p.doc("preview")
	p.click("#confirm")
	p.waitText("#result", "Replayed 1 of dead letter")
	e.settled.waitSettled(t, 4, 2)
	p.open("/waybill?id=JD404")
	p.waitText("#timeline", "delivered")
	p.waitText("#timeline", "replayed")
	p.doc("waybill")

	// Pause delivery from the overview: the banner says so, the worker
	// follows, a new event waits; resume, and it is delivered.
	p.open("/")
	p.click("#pause")
	p.waitText("#delivery", "Delivery is paused until resumed")
	p.doc("paused")
	waitFor(t, "the worker to follow the pause", func() bool { return e.worker.OperatorPause().Active(time.Now()) })
	delivered := len(e.sb.Delivered("SF100"))
	e.publish(t, event("SF100", "tok-sf100-000", 3, "签收"))
	p.waitText("#lag", "1") // the overview reloads itself and shows it waiting
	if got := len(e.sb.Delivered("SF100")); got != delivered {
		t.Fatalf("SF100 delivered %d times while paused, was %d", got, delivered)
	}
	p.click("#resume")
	p.waitText("#delivery", "Delivery is running")
	e.settled.waitSettled(t, 5, 2)
	if got := len(e.sb.Delivered("SF100")); got != delivered+1 {
		t.Fatalf("SF100 delivered %d times after resume, want %d", got, delivered+1)
	}
	p.waitText("#lag", "0")

	// A POST without the CSRF token, from the page's own origin, is refused.
	res, err := p.p.Evaluate(rod.Eval(`() => fetch("/deadletters/purge", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "scope=filter&confirm=1"}).then(r => r.status)`).ByPromise())
	p.check("POST without CSRF", err)
	if status := res.Value.Int(); status != 403 {
		t.Fatalf("a POST without the CSRF token answered %d, want 403", status)
	}

	// A read-only console on the same deployment offers no action.
	ro := newEnvConsole(t, e, Config{ReadOnly: true})
	rp := newPage(t, ro.URL)
	for _, path := range []string{"/", "/deadletters", "/deadletters?errcode=9300507", "/waybill?id=SF200"} {
		rp.open(path)
		rp.waitText("#read-only", "read-only")
		rp.absent(`form[action="/pause"]`, `form[action="/deadletters/replay"]`, `form[action="/deadletters/purge"]`, "#reveal", `input[name="seq"]`)
	}
}
