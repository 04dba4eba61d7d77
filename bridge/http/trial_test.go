package http_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	bhttp "github.com/outpost-sms/outpost/bridge/http"
)

// openEvents opens GET /v1/events with token and returns the answer
// (its body is the stream, closed when the test ends).
func openEvents(t *testing.T, base, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// untilBye reads the stream until "event: bye" and its end; the client's
// timeout (beyond the 20 s heartbeat) fails it otherwise.
func untilBye(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	sc := bufio.NewScanner(resp.Body)
	bye := false
	for sc.Scan() {
		bye = bye || sc.Text() == "event: bye"
	}
	if !bye {
		t.Errorf("%s: the stream ended without bye: %v", what, sc.Err())
	}
}

// A token's event stream ends when the token is removed, and when it
// expires: before, it went on delivering events to a revoked token.
func TestEventStreamEndsWithItsToken(t *testing.T) {
	sock, base := serveTCP(t, newRouter(t))
	add := func(body string) string {
		t.Helper()
		code, b := sock("POST", "/v1/tokens", body)
		var v struct{ Token string }
		if code != 201 || json.Unmarshal(b, &v) != nil {
			t.Fatalf("token add %s: %d %s", body, code, b)
		}
		return v.Token
	}
	gone, brief, other := add(`{"name":"gone","role":"admin"}`), add(`{"name":"brief","role":"user","expires":"2s"}`), add(`{"name":"other","role":"user"}`)
	s1, s2, s3 := openEvents(t, base, gone), openEvents(t, base, brief), openEvents(t, base, other)
	for _, r := range []*http.Response{s1, s2, s3} {
		if r.StatusCode != 200 {
			t.Fatalf("events: %d", r.StatusCode)
		}
	}
	if code, b := sock("DELETE", "/v1/tokens/gone", ""); code != 200 {
		t.Fatalf("token rm: %d %s", code, b)
	}
	untilBye(t, "removed token", s1)
	untilBye(t, "expired token", s2)
	// Another token's stream goes on: it gets the heartbeat's data, not an end.
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(s3.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				line <- sc.Text()
				return
			}
		}
		line <- "end"
	}()
	if code, b := sock("POST", "/v1/tokens", `{"name":"x","role":"user"}`); code != 201 {
		t.Fatalf("token add: %d %s", code, b)
	}
	select {
	case l := <-line:
		t.Errorf("the other token's stream: %q", l)
	case <-time.After(500 * time.Millisecond):
	}
}

// One token (or session) cannot hold an unbounded number of event
// streams: each costs memory on a small box (1,000 took 45 MB).
func TestEventStreamsBounded(t *testing.T) {
	sock, base := serveTCP(t, newRouter(t))
	code, b := sock("POST", "/v1/tokens", `{"name":"many","role":"user"}`)
	var v struct{ Token string }
	if code != 201 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("token add: %d %s", code, b)
	}
	var open []*http.Response
	for i := 0; i < 100; i++ {
		r := openEvents(t, base, v.Token)
		if r.StatusCode != 200 {
			var e struct{ Error string }
			if r.StatusCode != 429 || json.NewDecoder(r.Body).Decode(&e) != nil || !strings.Contains(e.Error, "event streams") {
				t.Fatalf("stream %d: %d %q", i+1, r.StatusCode, e.Error)
			}
			t.Logf("stream %d refused: %s", i+1, e.Error)
			break
		}
		open = append(open, r)
	}
	if len(open) == 100 {
		t.Fatal("100 event streams for one token")
	}
	// One closed, another may open.
	open[0].Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := openEvents(t, base, v.Token)
		if r.StatusCode == 200 {
			break
		}
		r.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a stream closed, yet another is refused: %d", r.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bcrypt reads 72 bytes: a login with a longer password (whose first 72
// bytes are the password) is refused, as adding it is.
func TestLoginPasswordOver72(t *testing.T) {
	sock, base := serveTCP(t, newRouter(t))
	pw := strings.Repeat("p", 72)
	if code, b := sock("POST", "/v1/users", `{"name":"ann","role":"user","password":"`+pw+`"}`); code != 201 {
		t.Fatalf("add user: %d %s", code, b)
	}
	if _, csrf := login(t, base, "ann", pw+"-and-more"); csrf != "" {
		t.Error("a 82-byte password logged in as the 72-byte one")
	}
	if _, csrf := login(t, base, "ann", pw); csrf == "" {
		t.Error("the right password did not log in")
	}
}

// Wrong logins sent all at once from one address are checked one at a
// time, each after the delay of the failures before it, and those
// beyond a few waiting are refused at once: before, 60 in parallel were
// all checked (bcrypt each) within about 16 s, the delay bounding
// nothing.
func TestParallelLoginsTakeTurns(t *testing.T) {
	sock, base := serveTCP(t, newRouter(t))
	if code, b := sock("POST", "/v1/users", `{"name":"ann","role":"user","password":"correct horse"}`); code != 201 {
		t.Fatalf("add user: %d %s", code, b)
	}
	const n = 20
	type attempt struct {
		c    *http.Client
		csrf string
	}
	var ready []attempt
	for range n {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 60 * time.Second}
		resp, err := c.Get(base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ready = append(ready, attempt{c, string(csrfInPage.FindSubmatch(b)[1])})
	}
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i, a := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := a.c.PostForm(base+"/login", url.Values{"csrf": {a.csrf}, "name": {"ann"}, "password": {fmt.Sprint("guess ", i)}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	t.Logf("answers: %v", count)
	if count[http.StatusUnauthorized] > 6 || count[http.StatusTooManyRequests] == 0 || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n {
		t.Errorf("%d wrong logins at once: %v; want at most 6 checked (401), the others 429", n, count)
	}
}

// An unauthenticated client cannot hold connections without end: an
// idle keep-alive connection and a request whose body never comes are
// closed after the timeouts (2,000 idle ones took the daemon from 32 to
// 66 MB and were held as long as the client liked), while an event
// stream, which reads nothing, lives on; past the connection cap a new
// connection waits until one closes.
func TestTCPConnectionsBounded(t *testing.T) {
	bhttp.SetTCPLimits(t, time.Second, 100)
	sock, base := serveTCP(t, newRouter(t))
	addr := strings.TrimPrefix(base, "http://")
	code, b := sock("POST", "/v1/tokens", `{"name":"ev","role":"user"}`)
	var v struct{ Token string }
	if code != 201 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("token add: %d %s", code, b)
	}
	closed := func(what string, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: still open after 30 s", what)
		}
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	idle := dial()
	fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	stalled := dial()
	fmt.Fprint(stalled, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\ncsrf=")
	stream := openEvents(t, base, v.Token)
	closed("an idle keep-alive connection", idle)
	closed("a login whose body never comes", stalled)
	got := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		got <- err
	}()
	select {
	case err := <-got:
		t.Errorf("the event stream ended after the read timeout: %v", err)
	case <-time.After(3 * time.Second):
	}
}

// Past the connection cap, a new connection is served only once another
// closes.
func TestTCPConnectionCap(t *testing.T) {
	bhttp.SetTCPLimits(t, time.Minute, 3)
	_, base := serveTCP(t, newRouter(t))
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := c.Read(make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	answered := make(chan int, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(base + "/healthz")
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case code := <-answered:
		t.Fatalf("a fourth connection past a cap of 3 was answered: %d", code)
	case <-time.After(time.Second):
	}
	held[0].Close()
	if code := <-answered; code != 200 {
		t.Errorf("once one closed: %d", code)
	}
}

// A user token asking for a path that does not exist is told so (404),
// not that it needs role admin.
func TestUserTokenUnknownPath(t *testing.T) {
	sock, base := serveTCP(t, newRouter(t))
	code, b := sock("POST", "/v1/tokens", `{"name":"desk","role":"user"}`)
	var v struct{ Token string }
	if code != 201 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("token add: %d %s", code, b)
	}
	if code, e := tcpCall(t, base, v.Token, "GET", "/v1/nowhere", ""); code != 404 || !strings.Contains(e["error"].(string), "no route") {
		t.Errorf("GET /v1/nowhere: %d %v", code, e)
	}
	if code, e := tcpCall(t, base, v.Token, "GET", "/v1/tokens", ""); code != 403 {
		t.Errorf("GET /v1/tokens: %d %v", code, e)
	}
}
