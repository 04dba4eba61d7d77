package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// httpJSON sends a request to the daemon's HTTP API on TCP with token
// (none when empty) and returns the status and the JSON object answered
// (the test fails on a body that is not JSON).
func httpJSON(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var j any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, b)
	}
	v, _ := j.(map[string]any)
	return resp.StatusCode, v
}

// tokenOf runs outpost token add and returns the last line it printed.
func (g *gateway) tokenAdd(args ...string) string {
	g.t.Helper()
	out, errs, code := g.cli(append([]string{"token", "add"}, args...)...)
	if code != 0 {
		g.t.Fatalf("token add %v: exit %d: %s%s", args, code, out, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	tok := lines[len(lines)-1]
	if len(lines) < 2 || strings.ContainsAny(tok, " \t") || len(tok) < 40 {
		g.t.Fatalf("token add: the token is not alone on the last line:\n%s", out)
	}
	return tok
}

// TestHTTPTokensEndToEnd: the API on TCP through the real binary with
// the simulated modem: tokens made by the CLI (shown once, never listed),
// roles, an expired token, no token, slowed wrong tokens, JSON errors,
// /healthz and /readyz, and the audit of the token commands.
func TestHTTPTokensEndToEnd(t *testing.T) {
	addr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n", addr))
	g.start()
	base := "http://" + addr

	user := g.tokenAdd("desk", "--role", "user")
	admin := g.tokenAdd("ops", "--role", "admin", "--expires", "720h")
	brief := g.tokenAdd("brief", "--role", "user", "--expires", "1s")
	out, errs, code := g.cli("token", "list")
	if code != 0 || strings.Contains(out, user) || strings.Contains(out, admin) || !strings.Contains(out, "desk") || !strings.Contains(out, "admin") {
		t.Errorf("token list: exit %d: %s%s", code, out, errs)
	}
	out, _, _ = g.cli("token", "list", "--json")
	if strings.Contains(out, user) || strings.Contains(out, "hash") {
		t.Errorf("token list --json shows a secret: %s", out)
	}
	if _, errs, code := g.cli("token", "add", "x", "--role", "root"); code == 0 || !strings.Contains(errs, "user or admin") {
		t.Errorf("--role root: exit %d: %s", code, errs)
	}

	// /readyz waits for the simulated modem; /healthz needs nothing.
	if code, v := httpJSON(t, base, "", "GET", "/healthz", ""); code != 200 || v["ok"] != true {
		t.Errorf("healthz: %d %v", code, v)
	}
	waitFor(t, "/readyz 200", 20*time.Second, func() bool {
		code, _ := httpJSON(t, base, "", "GET", "/readyz", "")
		return code == 200
	})
	if _, v := httpJSON(t, base, "", "GET", "/readyz", ""); v["store"] != "writable" || fmt.Sprint(v["modems_ready"]) != "[sim0]" {
		t.Errorf("readyz: %v", v)
	}

	code, v := httpJSON(t, base, user, "POST", "/v1/messages", `{"to":"+15555550100","text":"from the desk"}`)
	if code != 201 {
		t.Fatalf("user send: %d %v", code, v)
	}
	id := v["id"].(string)
	if code, v := httpJSON(t, base, user, "GET", "/v1/messages/"+id, ""); code != 200 || v["from_addr"] != "token:desk" {
		t.Errorf("user reads its send: %d %v", code, v)
	}
	other := g.send("from the cli")
	if code, v := httpJSON(t, base, user, "GET", "/v1/messages/"+other, ""); code != 403 || v["error"] == nil {
		t.Errorf("user reads the CLI's send: %d %v", code, v)
	}
	if code, _ := httpJSON(t, base, user, "GET", "/v1/inbox", ""); code != 200 {
		t.Errorf("user inbox: %d", code)
	}
	for _, r := range [][2]string{{"GET", "/v1/audit"}, {"POST", "/v1/messages/" + id + "/retry"}, {"GET", "/v1/tokens"}} {
		if code, v := httpJSON(t, base, user, r[0], r[1], ""); code != 403 || !strings.Contains(fmt.Sprint(v["error"]), "admin") {
			t.Errorf("user %s %s: %d %v", r[0], r[1], code, v)
		}
	}
	if code, v := httpJSON(t, base, admin, "GET", "/v1/audit", ""); code != 200 {
		t.Errorf("admin audit: %d %v", code, v)
	}
	if code, v := httpJSON(t, base, admin, "GET", "/v1/messages/"+other, ""); code != 200 {
		t.Errorf("admin reads the CLI's send: %d %v", code, v)
	}
	time.Sleep(1100 * time.Millisecond)
	if code, v := httpJSON(t, base, brief, "GET", "/v1/inbox", ""); code != 401 || !strings.Contains(fmt.Sprint(v["error"]), "expired") {
		t.Errorf("expired token: %d %v", code, v)
	}
	if code, v := httpJSON(t, base, "", "GET", "/v1/inbox", ""); code != 401 || v["error"] == nil {
		t.Errorf("no token: %d %v", code, v)
	}
	httpJSON(t, base, admin, "GET", "/v1/inbox", "") // a success forgets the failures
	timed := func() time.Duration {
		t0 := time.Now()
		if code, _ := httpJSON(t, base, "opt_not-a-token", "GET", "/v1/inbox", ""); code != 401 {
			t.Errorf("wrong token: %d", code)
		}
		return time.Since(t0)
	}
	first, second := timed(), timed()
	t.Logf("wrong token: %v, then %v", first, second)
	if second < first+200*time.Millisecond {
		t.Errorf("second wrong token %v, first %v: not slowed", second, first)
	}
	if !strings.Contains(g.d.out.String(), "refused HTTP API request") {
		t.Errorf("refused requests not logged")
	}
	httpJSON(t, base, admin, "GET", "/v1/inbox", "")
	if code, v := httpJSON(t, base, admin, "GET", "/v1/nowhere", ""); code != 404 || v["error"] == nil {
		t.Errorf("404: %d %v", code, v)
	}
	if code, v := httpJSON(t, base, admin, "DELETE", "/v1/inbox", ""); code != 405 || v["error"] == nil {
		t.Errorf("405: %d %v", code, v)
	}

	var list []struct {
		Name     string
		LastUsed time.Time `json:"last_used"`
		Expires  time.Time
	}
	out, _, _ = g.cli("token", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 3 {
		t.Fatalf("token list --json: %v %s", err, out)
	}
	for _, tk := range list { // brief was refused (expired): never used
		if tk.Name != "brief" && (tk.LastUsed.IsZero() || time.Since(tk.LastUsed) > time.Minute) || tk.Name == "ops" && time.Until(tk.Expires) < 719*time.Hour {
			t.Errorf("token %s: last used %v, expires %v", tk.Name, tk.LastUsed, tk.Expires)
		}
	}
	if out, errs, code := g.cli("token", "rm", "desk"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("token rm: exit %d: %s%s", code, out, errs)
	}
	if code, _ := httpJSON(t, base, user, "GET", "/v1/inbox", ""); code != 401 {
		t.Errorf("removed token: %d", code)
	}
	out, _, _ = g.cli("audit", "--json")
	for _, op := range []string{`"token/add"`, `"token/rm"`, `"cli"`} {
		if !strings.Contains(out, op) {
			t.Errorf("audit has no %s: %s", op, out)
		}
	}
}

// TestHTTPReadyWithoutModemAndPortInUse: /readyz is 503 when the only
// modem is a serial device that is not there; a taken http.listen stops
// the start naming it.
func TestHTTPReadyWithoutModemAndPortInUse(t *testing.T) {
	addr := freePort(t)
	g := newGatewayWith(t, filepath.Join(t.TempDir(), "no-such-tty"), fmt.Sprintf("[http]\nlisten = %q\n", addr))
	g.start()
	code, v := httpJSON(t, "http://"+addr, "", "GET", "/readyz", "")
	if code != 503 || v["ok"] != false || v["store"] != "writable" || len(v["modems_ready"].([]any)) != 0 {
		t.Errorf("readyz without a modem: %d %v", code, v)
	}
	if code, _ := httpJSON(t, "http://"+addr, "", "GET", "/healthz", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	g.d.stop()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g2 := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n", l.Addr().String()))
	d := start(t, g2.dir, nil, "run", "--config", g2.config)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon started on a taken http.listen")
	}
	if out := d.out.String(); d.err == nil || !strings.Contains(out, "http.listen") {
		t.Errorf("start on a taken port: %v\n%s", d.err, out)
	}
}
