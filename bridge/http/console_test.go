package http_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// shiftClock is the real clock moved by a test.
type shiftClock struct {
	mu    sync.Mutex
	shift time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.shift)
}

func (c *shiftClock) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(time.Now().UnixNano()) + c.shift
}

func (c *shiftClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shift += d
}

var csrfInPage = regexp.MustCompile(`name="csrf" (?:value|content)="([^"]+)"`)

// login logs in with the form and returns the client and the console
// page's CSRF token ("" when the login failed).
func login(t *testing.T, base, name, password string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInPage.FindSubmatch(b)
	if m == nil {
		t.Fatalf("login page without its CSRF field: %s", b)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := csrfInPage.FindSubmatch(b); m != nil && resp.StatusCode == 200 && resp.Request.URL.Path == "/" {
		return c, string(m[1])
	}
	return c, ""
}

func get(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A session ends after DefaultSessionIdle unused, by the store's clock;
// one in use lives on.
func TestSessionIdle(t *testing.T) {
	router := newRouter(t)
	clk := &shiftClock{}
	router.Store.SetClock(clk)
	sock, base := serveTCP(t, router)
	if code, b := sock("POST", "/v1/users", `{"name": "ann", "role": "user", "password": "correct horse"}`); code != 201 {
		t.Fatalf("add user: %d %s", code, b)
	}
	if code, b := sock("POST", "/v1/users", `{"name": "bob", "role": "user", "password": "short"}`); code != 400 || !strings.Contains(string(b), "at least 8") {
		t.Errorf("short password: %d %s", code, b)
	}
	used, csrf := login(t, base, "ann", "correct horse")
	idle, _ := login(t, base, "ann", "correct horse")
	if csrf == "" {
		t.Fatal("login failed")
	}
	for _, step := range []time.Duration{6 * time.Hour, 5 * time.Hour, 2 * time.Hour} {
		clk.add(step)
		if code := get(t, used, base+"/v1/inbox"); code != 200 {
			t.Fatalf("a session in use, after %s more: %d", step, code)
		}
	}
	if code := get(t, idle, base+"/v1/inbox"); code != 401 {
		t.Errorf("a session unused 13h: %d, want 401", code)
	}
	// Its page sends the browser to the login form.
	resp, err := idle.Get(base + "/")
	if err != nil || resp.Request.URL.Path != "/login" {
		t.Errorf("the console with an ended session: %v %v", err, resp.Request.URL)
	}
	resp.Body.Close()
	if _, csrf := login(t, base, "ann", "wrong horse"); csrf != "" {
		t.Error("a wrong password logged in")
	}
}

// A user has at most 20 sessions: a login past them ends the least
// recently used, and only that one.
func TestSessionsPerUserBounded(t *testing.T) {
	router := newRouter(t)
	sock, base := serveTCP(t, router)
	if code, b := sock("POST", "/v1/users", `{"name": "ann", "role": "user", "password": "correct horse"}`); code != 201 {
		t.Fatalf("add user: %d %s", code, b)
	}
	var clients []*http.Client
	for i := range 21 {
		c, csrf := login(t, base, "ann", "correct horse")
		if csrf == "" {
			t.Fatalf("login %d failed", i)
		}
		clients = append(clients, c)
		if i == 0 {
			// The first is the least recently used from here on.
			time.Sleep(5 * time.Millisecond)
		}
		if i > 0 && get(t, clients[1], base+"/v1/inbox") != 200 {
			t.Fatalf("after login %d, the second session ended", i)
		}
	}
	if code := get(t, clients[0], base+"/v1/inbox"); code != 401 {
		t.Errorf("the least recently used of 21 sessions: %d, want 401", code)
	}
	for i, c := range clients[1:] {
		if code := get(t, c, base+"/v1/inbox"); code != 200 {
			t.Errorf("session %d of 21: %d", i+1, code)
		}
	}
}

// The console's files come from the binary, with a CSP that allows
// nothing from elsewhere; the socket does not serve them.
func TestConsoleFiles(t *testing.T) {
	sock, base := serveTCP(t, newRouter(t))
	for _, f := range []string{"/console/app.js", "/console/sms.js", "/console/app.css"} {
		resp, err := http.Get(base + f)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) < 500 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d, %d bytes, CSP %q", f, resp.StatusCode, len(b), resp.Header.Get("Content-Security-Policy"))
		}
	}
	for _, f := range []string{"/console/index.html", "/console/nothing.js", "/console/../console.go"} {
		if code, _ := tcpCall(t, base, "", "GET", f, ""); code != 404 && code != 401 {
			t.Errorf("%s: %d", f, code)
		}
	}
	if code, _ := sock("GET", "/console/app.js", ""); code != 404 {
		t.Errorf("the socket serves the console: %d", code)
	}
}
