package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTokenQuotaEndToEnd: per-token quotas on the API on TCP, through
// the real binary. [[quota.source]] who = "token:app" bounds the token
// app: its sends count under token:app whatever the request says it is
// by (an X-Outpost-By header is ignored on TCP, a "by" in the body is
// refused), and the send past the bound is a 429 JSON error with
// Retry-After. Another token has its own count, under [quota].
func TestTokenQuotaEndToEnd(t *testing.T) {
	addr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n[quota]\nsms_per_hour = 5\n[[quota.source]]\nwho = \"token:app\"\nsms_per_hour = 3\n", addr))
	g.start()
	base := "http://" + addr
	app, other, ops := g.tokenAdd("app", "--role", "user"), g.tokenAdd("other", "--role", "user"), g.tokenAdd("ops", "--role", "admin")

	// send posts as token with the header X-Outpost-By: by (none when
	// empty).
	send := func(token, by, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if by != "" {
			req.Header.Set("X-Outpost-By", by)
		}
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	// Three SMS (one send to two numbers counts 2), each saying it is by
	// someone else.
	if code, _, b := send(app, "alice", `{"to": ["+15555550100", "+15555550123"], "text": "one"}`); code != 201 {
		t.Fatalf("app's first send: %d %s", code, b)
	}
	if code, _, b := send(app, "bob", `{"to": "+15555550100", "text": "two"}`); code != 201 {
		t.Fatalf("app's second send: %d %s", code, b)
	}
	if code, _, b := send(app, "", `{"to": "+15555550100", "text": "by carol", "by": "carol"}`); code != 400 || !strings.Contains(b, `unknown field \"by\"`) {
		t.Errorf(`a "by" in the body: %d %s`, code, b)
	}
	code, hdr, b := send(app, "dave", `{"to": "+15555550100", "text": "four"}`)
	retry, _ := strconv.Atoi(hdr.Get("Retry-After"))
	if code != 429 || hdr.Get("Content-Type") != "application/json" || retry < 3500 || retry > 3600 ||
		!strings.Contains(b, `token:app had 3 SMS accepted in the last hour and may have 3 ([[quota.source]] 1 who = \"token:app\" sms_per_hour = 3)`) ||
		!strings.Contains(b, fmt.Sprintf(`"retry_after": %d`, retry)) {
		t.Errorf("app over its quota: %d, Retry-After %q: %s", code, hdr.Get("Retry-After"), b)
	}
	// Another token counts apart, under [quota].
	for i := range 5 {
		if code, _, b := send(other, "app", fmt.Sprintf(`{"to": "+15555550100", "text": "other %d"}`, i)); code != 201 {
			t.Fatalf("other's send %d: %d %s", i, code, b)
		}
	}
	if code, _, b := send(other, "", `{"to": "+15555550100", "text": "other 6"}`); code != 429 || !strings.Contains(b, "token:other had 5 SMS accepted") || !strings.Contains(b, "[quota] sms_per_hour = 5") {
		t.Errorf("other over [quota]: %d %s", code, b)
	}
	// Where app stands, as an admin sees it; the audit names the token.
	code, v := httpJSON(t, base, ops, "GET", "/v1/quota?who=token:app", "")
	if code != 200 || v["sms_last_hour"] != float64(3) || v["sms_per_hour"] != float64(3) {
		t.Errorf("quota of token:app: %d %v", code, v)
	}
	out, _, _ := g.cli("audit", "--who", "token:app", "--json")
	if strings.Count(out, `"op": "send"`) != 2 || strings.Contains(out, "alice") || strings.Contains(out, "bob") {
		t.Errorf("audit of token:app's sends:\n%s", out)
	}
}
