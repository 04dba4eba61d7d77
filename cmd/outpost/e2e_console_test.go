package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/creack/pty"

	"github.com/outpost-sms/outpost/pdu"
)

// cliIn is cli with stdin.
func cliIn(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

var csrfField = regexp.MustCompile(`name="csrf" (?:value|content)="([^"]+)"`)

// consoleClient logs in with the login form as a browser does and
// returns the client (its cookie jar holds the session), the page's CSRF
// token and the status of the login's answer.
func consoleClient(t *testing.T, base, name, password string) (*http.Client, string, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF field in the login page:\n%s", b)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	token := ""
	if m := csrfField.FindSubmatch(b); m != nil && resp.StatusCode == 200 {
		token = string(m[1])
	}
	return c, token, resp.StatusCode
}

// do sends a request with the client's session and returns the status
// and the JSON object answered (nil for an array; the test fails on a
// body that is not JSON).
func do(t *testing.T, c *http.Client, method, u, csrf, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var j any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, u, resp.StatusCode, b)
	}
	v, _ := j.(map[string]any)
	return resp.StatusCode, v
}

// TestConsoleUsersAndSessions: outpost user, login (wrong password
// slowed and logged), the session's role, CSRF on every change (forms
// and API calls), logout ending the session and its event stream.
func TestConsoleUsersAndSessions(t *testing.T) {
	addr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n", addr))
	g.start()
	base := "http://" + addr

	if out, errs, code := cliIn(t, g.dir, "correct horse\n", "user", "add", "ann", "--role", "admin", "--config", g.config); code != 0 {
		t.Fatalf("user add: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := cliIn(t, g.dir, "password2\n", "user", "add", "desk", "--role", "user", "--config", g.config); code != 0 {
		t.Fatalf("user add desk: %d %s", code, errs)
	}
	if _, errs, code := cliIn(t, g.dir, "short\n", "user", "add", "bob", "--role", "user", "--config", g.config); code == 0 || !strings.Contains(errs, "at least 8") {
		t.Errorf("a short password: exit %d: %s", code, errs)
	}
	if _, errs, code := cliIn(t, g.dir, "password3\n", "user", "add", "ann", "--role", "user", "--config", g.config); code == 0 || !strings.Contains(errs, "exists already") {
		t.Errorf("a second ann: exit %d: %s", code, errs)
	}
	if _, errs, code := cliIn(t, g.dir, "password3\n", "user", "add", "eve", "--role", "root", "--config", g.config); code == 0 || !strings.Contains(errs, "user or admin") {
		t.Errorf("--role root: exit %d: %s", code, errs)
	}
	out, _, code := g.cli("user", "list")
	if code != 0 || !strings.Contains(out, "ann") || !strings.Contains(out, "desk") || strings.Contains(out, "$2") {
		t.Errorf("user list: %d\n%s", code, out)
	}

	// A wrong password: 401 with the login page saying so, slowed, logged.
	start := time.Now()
	_, _, code = consoleClient(t, base, "ann", "wrong horse")
	if code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	_, _, code = consoleClient(t, base, "nobody", "wrong horse")
	if code != http.StatusUnauthorized || time.Since(start) < 250*time.Millisecond {
		t.Errorf("unknown user: %d after %s (want 401, slowed)", code, time.Since(start))
	}
	waitFor(t, "the refusals in the log", 10*time.Second, func() bool {
		return strings.Count(g.d.out.String(), "refused console login") >= 2
	})

	// A login form without its CSRF token (a cross-site post) is refused.
	if code, v := do(t, http.DefaultClient, "POST", base+"/login", "", "application/x-www-form-urlencoded", "name=ann&password=correct+horse"); code != 403 || v["error"] == nil {
		t.Errorf("login without CSRF: %d %v", code, v)
	}

	admin, csrf, code := consoleClient(t, base, "ann", "correct horse")
	if code != 200 || csrf == "" {
		t.Fatalf("login: %d, csrf %q", code, csrf)
	}
	u, _ := url.Parse(base)
	for _, c := range admin.Jar.Cookies(u) {
		if c.Name == "outpost_session" && len(c.Value) < 40 {
			t.Errorf("session cookie %q: too short", c.Value)
		}
	}
	// The cookie's flags, as the browser gets them.
	resp, _ := consoleRaw(t, base, "ann", "correct horse")
	if sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); !strings.Contains(sc, "outpost_session=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("session cookie: %s", sc)
	}

	send := `{"to": "+15555550100", "text": "from the console"}`
	if code, v := do(t, admin, "POST", base+"/v1/messages", "", "application/json", send); code != 403 || !strings.Contains(fmt.Sprint(v["error"]), "CSRF") {
		t.Errorf("send without CSRF: %d %v", code, v)
	}
	if code, v := do(t, admin, "POST", base+"/v1/messages", "not the token", "application/json", send); code != 403 {
		t.Errorf("send with a wrong CSRF token: %d %v", code, v)
	}
	// A plain form post without the field (what a hostile page can make a
	// browser send) is refused, to an API route and to logout.
	if code, v := do(t, admin, "POST", base+"/v1/messages/x/retry", "", "application/x-www-form-urlencoded", "by=evil"); code != 403 || v["error"] == nil {
		t.Errorf("form post without CSRF: %d %v", code, v)
	}
	if code, v := do(t, admin, "POST", base+"/logout", "", "application/x-www-form-urlencoded", ""); code != 403 || v["error"] == nil {
		t.Errorf("logout without CSRF: %d %v", code, v)
	}
	code, v := do(t, admin, "POST", base+"/v1/messages", csrf, "application/json", send)
	if code != 201 {
		t.Fatalf("send with CSRF: %d %v", code, v)
	}
	id := v["id"].(string)
	if code, v := do(t, admin, "GET", base+"/v1/messages/"+id, "", "", ""); code != 200 || v["from_addr"] != "user:ann" {
		t.Errorf("the send's from: %d %v", code, v["from_addr"])
	}
	if code, v := do(t, admin, "GET", base+"/v1/audit", "", "", ""); code != 200 {
		t.Errorf("admin session, audit: %d %v", code, v)
	}

	// Role user: send and inbox, not admin routes; its own sends only.
	desk, dcsrf, code := consoleClient(t, base, "desk", "password2")
	if code != 200 {
		t.Fatalf("desk login: %d", code)
	}
	if code, v := do(t, desk, "GET", base+"/v1/audit", "", "", ""); code != 403 || !strings.Contains(fmt.Sprint(v["error"]), "admin") {
		t.Errorf("user session, audit: %d %v", code, v)
	}
	if code, _ := do(t, desk, "GET", base+"/v1/messages/"+id, "", "", ""); code != 403 {
		t.Errorf("user session reads ann's send: %d", code)
	}
	if code, v := do(t, desk, "POST", base+"/v1/messages", dcsrf, "application/json", send); code != 201 {
		t.Errorf("user session send: %d %v", code, v)
	}

	// The event stream: a send shows up; logout ends it with "bye".
	req, _ := http.NewRequest("GET", base+"/v1/events", nil)
	stream, err := admin.Do(req)
	if err != nil || stream.StatusCode != 200 || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %v %v", err, stream)
	}
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(200 * time.Millisecond)
	g.send("seen live")
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for !seen["event: inbound"] {
		select {
		case l := <-lines:
			seen[l] = true
		case <-deadline:
			t.Fatalf("no inbound event within 20s: %v", seen)
		}
	}
	if !seen["event: status"] {
		t.Errorf("no status event before the echo came in: %v", seen)
	}
	resp, err = admin.PostForm(base+"/logout", url.Values{"csrf": {csrf}})
	if err != nil || resp.Request.URL.Path != "/login" {
		t.Fatalf("logout: %v %v", err, resp)
	}
	resp.Body.Close()
	bye := false
	for l := range lines {
		bye = bye || l == "event: bye"
	}
	if !bye {
		t.Error("the event stream ended without bye at logout")
	}
	if code, _ := do(t, admin, "GET", base+"/v1/inbox", "", "", ""); code != 401 {
		t.Errorf("after logout: %d, want 401", code)
	}

	// A changed password ends the user's sessions; a removed user too.
	if code, _ := do(t, desk, "GET", base+"/v1/inbox", "", "", ""); code != 200 {
		t.Fatalf("desk before passwd: %d", code)
	}
	if _, errs, code := cliIn(t, g.dir, "password4\n", "user", "passwd", "desk", "--config", g.config); code != 0 {
		t.Fatalf("user passwd: %d %s", code, errs)
	}
	if code, _ := do(t, desk, "GET", base+"/v1/inbox", "", "", ""); code != 401 {
		t.Errorf("desk after passwd: %d, want 401", code)
	}
	if _, _, code := consoleClient(t, base, "desk", "password4"); code != 200 {
		t.Errorf("login with the new password: %d", code)
	}
	if out, errs, code := g.cli("user", "rm", "desk"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("user rm: %d %s%s", code, out, errs)
	}
	if _, _, code := consoleClient(t, base, "desk", "password4"); code != 401 {
		t.Errorf("login of a removed user: %d", code)
	}
	out, _, _ = g.cli("audit")
	for _, op := range []string{"user/add", "user/passwd", "user/rm"} {
		if !strings.Contains(out, op) {
			t.Errorf("audit lacks %s:\n%s", op, out)
		}
	}
}

// consoleRaw is the login's own answer (not followed).
func consoleRaw(t *testing.T, base, name, password string) (*http.Response, []byte) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(b)
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// artifacts is the folder the browser test keeps its screenshots in:
// $OUTPOST_ARTIFACTS/console, else a new folder under the system's temp
// folder that outlives the test. Its path is logged.
func artifacts(t *testing.T) string {
	dir := os.Getenv("OUTPOST_ARTIFACTS")
	var err error
	if dir != "" {
		dir = filepath.Join(dir, "console")
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "outpost-console-")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots are kept in %s", dir)
	return dir
}

// smsTexts are the texts whose part count and encoding the console's
// JavaScript must figure as the pdu package does.
var smsTexts = []string{
	"hello",
	strings.Repeat("a", 160),
	strings.Repeat("a", 161),
	strings.Repeat("a", 306),
	strings.Repeat("a", 307),
	strings.Repeat("€", 80),
	strings.Repeat("€", 81),
	strings.Repeat("a", 152) + "[" + strings.Repeat("b", 10),
	strings.Repeat("a", 151) + "{}" + "x",
	"Grüße aus Zürich, {braces} ~ | ^ \\ [x]",
	"ça va?",
	strings.Repeat("é", 70),
	strings.Repeat("ç", 70),
	strings.Repeat("ç", 71),
	strings.Repeat("ç", 134) + "x",
	strings.Repeat("x", 66) + "😀" + strings.Repeat("y", 10),
	strings.Repeat("😀", 35),
	strings.Repeat("😀", 36),
	"line one\nline two\r\n\f",
	"Привет, как дела?",
	"\x1b",
}

// goSMS is how the pdu package sends text: parts and "gsm7" or "ucs2".
func goSMS(t *testing.T, text string) (int, string) {
	parts, err := (&pdu.Encoder{}).Encode(pdu.Outgoing{To: "+15555550100", Text: text})
	if err != nil {
		t.Fatalf("encode %q: %v", text, err)
	}
	// FO, MR, DA length (11 digits), TOA, 6 octets of digits, PID, DCS.
	if parts[0].TPDU[11]&0x0c == 0x08 {
		return len(parts), "ucs2"
	}
	return len(parts), "gsm7"
}

// TestConsoleBrowser drives the console in headless Chromium through the
// real binary: login (a wrong password refused), labels and keyboard
// focus, the part counter against the pdu package, a send to the echo
// number whose reply appears in the inbox without a reload, a failed
// message retried from the Messages page, pause and resume, screenshots
// of every page at phone and laptop widths, and the first page's weight
// and load time.
func TestConsoleBrowser(t *testing.T) {
	chrome := needTool(t, "chromium")
	addr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n", addr))
	g.start("OUTPOST_RETRY=100ms,500ms")
	base := "http://" + addr
	if _, errs, code := cliIn(t, g.dir, "correct horse\n", "user", "add", "ann", "--role", "admin", "--config", g.config); code != 0 {
		t.Fatalf("user add: %d %s", code, errs)
	}
	shots := artifacts(t)
	ctl := simCtl{t, filepath.Join(g.dir, "data")}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 768),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	// The first Do starts the browser, bound to its context: no timeout
	// there; each step gets its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, g: g}
	run, poll := b.run, b.poll
	eval := func(expr string) string { t.Helper(); return evalJS[string](b, expr) }
	laptop := chromedp.EmulateViewport(1366, 768)
	phone := chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)

	// The login page, and a wrong password.
	run("login page", laptop, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#password")))
	b.shoot(shots, "login-laptop")
	run("wrong password", chromedp.SendKeys(chromedp.CSS("#name"), "ann"), chromedp.SendKeys(chromedp.CSS("#password"), "not it"),
		chromedp.Click(chromedp.CSS("#login-btn")), chromedp.WaitVisible(chromedp.CSS("#problem")))
	problem := eval(`document.getElementById("problem").textContent`)
	if !strings.Contains(problem, "Wrong name or password") {
		t.Errorf("wrong password: the page says %q", problem)
	}

	// The first page's weight and load time, from a fresh login.
	run("log in", chromedp.SetValue(chromedp.CSS("#name"), "ann"), chromedp.SetValue(chromedp.CSS("#password"), "correct horse"),
		chromedp.Click(chromedp.CSS("#login-btn")), chromedp.WaitVisible(chromedp.CSS("#inbox-list")))
	poll("the inbox loaded", `document.querySelector("#inbox-list li") !== null`)
	perf := evalJS[struct {
		Bytes, Encoded, Decoded float64
		Load, DOM, Fetch        float64
		Files                   int
	}](b, `(function () {
		var n = performance.getEntriesByType("navigation")[0];
		var r = performance.getEntriesByType("resource").filter(function (e) { return e.initiatorType !== "xmlhttprequest" && e.initiatorType !== "fetch" && e.initiatorType !== "other"; });
		var sum = function (k) { return r.reduce(function (a, e) { return a + e[k]; }, n[k]); };
		return { Bytes: sum("transferSize"), Encoded: sum("encodedBodySize"), Decoded: sum("decodedBodySize"), Load: n.loadEventEnd - n.fetchStart, DOM: n.domContentLoadedEventEnd - n.fetchStart, Fetch: n.fetchStart - n.startTime, Files: r.length + 1 };
	})()`)
	t.Logf("console first page: %d files, %.0f bytes transferred (%.0f bytes of bodies), DOMContentLoaded %.0f ms, load %.0f ms after the login's redirect (the login itself %.0f ms)",
		perf.Files, perf.Bytes, perf.Decoded, perf.DOM, perf.Load, perf.Fetch)
	if perf.Files != 4 || perf.Decoded < 10000 || perf.Decoded > 100000 {
		t.Errorf("first page: %d files, %.0f bytes: want the page, its CSS and two scripts, all from the daemon", perf.Files, perf.Decoded)
	}

	// Labels: every field of every page has one; landmarks and headings.
	unlabelled := evalJS[[]string](b, `Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).filter(function (e) { return e.labels.length === 0 && !e.getAttribute("aria-label"); }).map(function (e) { return e.outerHTML; })`)
	if len(unlabelled) > 0 {
		t.Errorf("fields without a label: %v", unlabelled)
	}
	landmarks := evalJS[[]int](b, `[document.querySelectorAll("header").length, document.querySelectorAll("nav").length, document.querySelectorAll("main").length, document.querySelectorAll("section h1").length]`)
	if fmt.Sprint(landmarks) != "[1 1 1 6]" {
		t.Errorf("header, nav, main, page headings: %v", landmarks)
	}

	// The part counter figures as the pdu package does.
	for _, text := range smsTexts {
		wantParts, wantEnc := goSMS(t, text)
		js, _ := json.Marshal(text)
		got := evalJS[struct {
			Parts    int
			Encoding string
		}](b, fmt.Sprintf(`(function () { var i = smsInfo(%s); return {Parts: i.parts, Encoding: i.encoding}; })()`, js))
		if got.Parts != wantParts || got.Encoding != wantEnc {
			t.Errorf("%.30q… (%d bytes): the console says %d part(s) %s, the pdu package %d %s", text, len(text), got.Parts, got.Encoding, wantParts, wantEnc)
		}
	}

	// Keyboard: Tab from the top reaches the send button, with a visible
	// focus ring on the way.
	run("send page", chromedp.Navigate(base+"/#send"), chromedp.WaitVisible(chromedp.CSS("#text")))
	reached := false
	for i := 0; i < 30 && !reached; i++ {
		run("tab", chromedp.KeyEvent("\t"))
		reached = eval(`document.activeElement.id`) == "send-btn"
	}
	if !reached {
		t.Error("Tab never reached the send button")
	}
	outline := eval(`getComputedStyle(document.activeElement).outlineStyle`)
	if outline == "none" || outline == "" {
		t.Errorf("the focused send button has no visible outline (%q)", outline)
	}

	// Typing shows the encoding and part count.
	run("type", chromedp.SendKeys(chromedp.CSS("#to"), "+15555550100"), chromedp.SendKeys(chromedp.CSS("#text"), "hello from the console"))
	counter := eval(`document.getElementById("counter").textContent`)
	if counter != "22 characters · GSM 7-bit · 1 part · 138 left in this part" {
		t.Errorf("counter: %q", counter)
	}
	run("type €", chromedp.SendKeys(chromedp.CSS("#text"), " ç"))
	counter = eval(`document.getElementById("counter").textContent`)
	if !strings.Contains(counter, "UCS-2") {
		t.Errorf("counter after ç: %q", counter)
	}
	run("type", chromedp.SetValue(chromedp.CSS("#text"), "hello from the console"))
	b.shoot(shots, "send-laptop")

	// Send to the echo number; the reply appears in the inbox, no reload.
	evalJS[chromedp.Void](b, `window.notReloaded = true`)
	run("send", chromedp.Click(chromedp.CSS("#send-btn")))
	poll("queued", `document.getElementById("sent").textContent.indexOf("Queued") === 0`)
	run("inbox", chromedp.Click(chromedp.CSS("#nav-inbox")))
	poll("the echo in the inbox", `document.getElementById("inbox-list").textContent.indexOf("echo: hello from the console") >= 0`)
	// Reply inline from the inbox: its echo can only come by the event
	// stream, the page being already loaded.
	first := eval(`document.querySelector("#inbox-list li").dataset.id`)
	run("reply", chromedp.Click(chromedp.CSS(`#inbox-list li[data-id="`+first+`"] button`)),
		chromedp.SendKeys(chromedp.CSS(`#reply-`+first), "a live one"),
		chromedp.Click(chromedp.CSS(`#inbox-list li[data-id="`+first+`"] form.reply button`)))
	poll("the live echo", `document.getElementById("inbox-list").textContent.indexOf("echo: a live one") >= 0 && window.notReloaded === true`)
	live := eval(`document.getElementById("live").textContent`)
	if !strings.HasPrefix(live, "New message from +15555550100") {
		t.Errorf("live note: %q", live)
	}

	// A message the network refuses fails; retried from the Messages
	// page, it is delivered.
	ctl.do("sim0 send-error 21")
	run("send one to fail", chromedp.Click(chromedp.CSS("#nav-send")), chromedp.SetValue(chromedp.CSS("#to"), "+15555550100"),
		chromedp.SetValue(chromedp.CSS("#text"), "this one fails first"), chromedp.Click(chromedp.CSS("#send-btn")))
	poll("queued", `document.getElementById("sent").textContent.indexOf("Queued") === 0`)
	sent := eval(`document.getElementById("sent").textContent`)
	id := strings.Fields(strings.TrimPrefix(sent, "Queued: "))[0]
	g.waitState(id, "failed")
	ctl.do("sim0 send-error 0")
	run("messages", chromedp.Click(chromedp.CSS("#nav-messages")), chromedp.SetValue(chromedp.CSS("#m-state"), "failed"),
		chromedp.Click(chromedp.CSS(`#messages-filter button`)))
	item := `#messages-list li[data-id="` + id + `"]`
	poll("the failed message", `document.querySelector('`+item+`') !== null`)
	reason := eval(`document.querySelector('` + item + ` .bad').textContent`)
	if !strings.Contains(reason, "Last error") || !strings.Contains(reason, "21") {
		t.Errorf("the failed message's reason: %q", reason)
	}
	b.shoot(shots, "messages-failed-laptop")
	run("show all", chromedp.SetValue(chromedp.CSS("#m-state"), ""), chromedp.Click(chromedp.CSS(`#messages-filter button`)))
	poll("listed", `document.querySelector('`+item+` button.retry') !== null`)
	run("retry", chromedp.Click(chromedp.CSS(item+` button.retry`)))
	g.waitDelivered(id)
	poll("delivered on the page without reload", `document.querySelector('`+item+`').dataset.state === "delivered" && window.notReloaded === true`)
	run("history", chromedp.Click(chromedp.CSS(item+` button[aria-expanded]`)))
	poll("the history", `(document.querySelector('`+item+` table') || {textContent: ""}).textContent.indexOf("retried by user:ann") >= 0`)

	// Pause and resume from the Modems page: the operations API, or, on a
	// daemon without it, the error shown on the page.
	run("modems", chromedp.Click(chromedp.CSS("#nav-modems")))
	poll("modem card", `document.querySelector('#modems-list article[data-id="sim0"]') !== null`)
	run("pause", chromedp.Click(chromedp.CSS(`#modems-list button.pause`)))
	poll("paused or an error", `document.querySelector("#page-modems .error").hidden === false || document.querySelector('#modems-list button.pause').textContent === "Resume sim0"`)
	perr := eval(`document.querySelector("#page-modems .error").hidden ? "" : document.querySelector("#page-modems .error").textContent`)
	if perr != "" {
		if !strings.Contains(perr, "/v1/pause/sim0") {
			t.Errorf("pause: the page shows %q", perr)
		}
		t.Logf("pause is not on this daemon yet; the page says: %s", perr)
	} else {
		run("resume", chromedp.Click(chromedp.CSS(`#modems-list button.pause`)))
		poll("resumed", `document.querySelector('#modems-list button.pause').textContent === "Pause sim0"`)
	}
	// A contact and a group, through their page.
	run("contacts", chromedp.Click(chromedp.CSS("#nav-contacts")), chromedp.SendKeys(chromedp.CSS("#c-name"), "Nurse Joy"),
		chromedp.SendKeys(chromedp.CSS("#c-phone"), "+15555550100"), chromedp.Click(chromedp.CSS("#contact-form button")))
	poll("contact listed", `document.getElementById("contacts-list").textContent.indexOf("Nurse Joy") >= 0`)
	run("group", chromedp.SendKeys(chromedp.CSS("#g-name"), "nurses"), chromedp.Click(chromedp.CSS("#group-form button")))
	poll("group listed", `document.getElementById("groups-list").textContent.indexOf("nurses") >= 0`)
	run("member", chromedp.SendKeys(chromedp.CSS("#mb-contact"), "Nurse Joy"), chromedp.Click(chromedp.CSS("#member-form button")))
	poll("member counted", `document.getElementById("groups-list").textContent.indexOf("1 members") >= 0`)

	// Every page at both widths.
	for _, size := range []struct {
		name string
		vp   chromedp.Action[chromedp.Void]
	}{{"laptop", laptop}, {"phone", phone}} {
		run(size.name, size.vp)
		for _, p := range []string{"inbox", "send", "messages", "contacts", "modems", "status"} {
			run(p, chromedp.Navigate(base+"/#"+p), chromedp.WaitVisible(chromedp.CSS("#page-"+p)))
			poll(p+" loaded", pageLoaded[p])
			wide := evalJS[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`)
			if wide {
				t.Errorf("%s at %s width scrolls sideways", p, size.name)
			}
			b.shoot(shots, p+"-"+size.name)
		}
	}
	errs := evalJS[[]string](b, `Array.from(document.querySelectorAll(".error")).filter(function (e) { return !e.hidden && e.closest("section") && !e.closest("section").hidden; }).map(function (e) { return e.textContent; })`)
	if len(errs) > 0 {
		t.Errorf("errors shown on the status page: %v", errs)
	}

	// Log out with the header's button: back at the login form, and the
	// console is closed to this browser.
	run("log out", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.CSS("#login-btn")))
	b.shoot(shots, "login-phone")
	run("the console after logout", chromedp.Navigate(base+"/#status"), chromedp.WaitVisible(chromedp.CSS("#login-btn")))
	if !strings.Contains(g.d.out.String(), "console logout") {
		t.Error("the logout is not in the daemon's log")
	}
}

// pageLoaded says when a page has drawn what the API answered.
var pageLoaded = map[string]string{
	"inbox":    `document.querySelector("#inbox-list li") !== null`,
	"send":     `document.getElementById("counter").textContent !== ""`,
	"messages": `document.querySelector("#messages-list li") !== null`,
	"contacts": `document.querySelector("#groups-list li") !== null`,
	"modems":   `document.querySelector("#modems-list article") !== null`,
	"status":   `document.querySelector('#status-body button[data-name="sms"]') !== null && document.querySelector('#status-body button[data-name="mqtt"]') !== null`,
}

// browser is the tab the browser test drives.
type browser struct {
	t   *testing.T
	ctx context.Context
	g   *gateway
}

// run runs steps, failing the test with the page and the daemon's log.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	b.t.Fatalf("%s: %v\npage: %.4000s\ndaemon: %.3000s", what, err, html, b.g.d.out.String())
}

// poll waits until expr is true in the page.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		b.fail("waiting for "+what, err)
	}
}

// evalJS is the value of expr in the page.
func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(expr, err)
	}
	return v
}

// shoot saves a PNG of the viewport as name.png in dir.
func (b *browser) shoot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// On a terminal, outpost user add asks for the password twice without
// echoing it; two that differ add nobody.
func TestUserPasswordOnTerminal(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	ask := func(first, second string) (string, error) {
		cmd := exec.Command(binary, "user", "add", "tty", "--role", "user", "--config", g.config)
		cmd.Dir = g.dir
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var out syncBuffer
		go io.Copy(&out, tty)
		waitFor(t, "the first prompt", 20*time.Second, func() bool { return strings.Contains(out.String(), "password for tty: ") })
		fmt.Fprint(tty, first+"\n")
		waitFor(t, "the second prompt", 20*time.Second, func() bool { return strings.Contains(out.String(), "again: ") })
		fmt.Fprint(tty, second+"\n")
		err = cmd.Wait()
		time.Sleep(100 * time.Millisecond) // the last output
		return out.String(), err
	}
	out, err := ask("horse battery", "horse batterx")
	if err == nil || !strings.Contains(out, "the two passwords differ") {
		t.Errorf("different passwords: %v\n%s", err, out)
	}
	out, err = ask("horse battery", "horse battery")
	if err != nil || !strings.Contains(out, "user tty added") {
		t.Fatalf("user add on a terminal: %v\n%s", err, out)
	}
	if strings.Contains(out, "horse") {
		t.Errorf("the password was echoed:\n%s", out)
	}
	if list, _, _ := g.cli("user", "list"); !strings.Contains(list, "tty") {
		t.Errorf("user list: %s", list)
	}
}
