package http_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// hubStub is a connector named hub that delivers nothing (no
// dispatcher runs here).
type hubStub struct{}

func (hubStub) Name() string                                    { return "hub" }
func (hubStub) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (hubStub) Deliver(context.Context, store.Message, store.Delivery) (bridge.Outcome, error) {
	return bridge.Outcome{}, nil
}

// The pause and resume routes, as the contract of issue 15 says them:
// POST /v1/pause/{name} and /v1/resume/{name}, admin only on TCP, 200
// {"name", "kind", "paused"}, 404 JSON for an unknown name; status lists
// what is paused and marks the modem and the link; /readyz does not
// count a paused modem.
func TestPauseRoutes(t *testing.T) {
	router := newRouter(t)
	router.Add(smsStub{})
	router.Add(hubStub{})
	router.ModemIDs = []string{"m1"}
	router.ModemStatus("m1", map[string]any{"id": "m1", "state": "ready"})
	router.LinkStatus("hub", map[string]any{"state": "up"})
	sock, base := serveTCP(t, router)
	token := func(name, role string) string {
		code, b := sock("POST", "/v1/tokens", `{"name":"`+name+`","role":"`+role+`"}`)
		var v struct{ Token string }
		if code != 201 || json.Unmarshal(b, &v) != nil {
			t.Fatalf("token add: %d %s", code, b)
		}
		return v.Token
	}
	user, admin := token("desk", "user"), token("ops", "admin")
	status := func() map[string]any {
		t.Helper()
		code, v := tcpCall(t, base, admin, "GET", "/v1/status", "")
		if code != 200 {
			t.Fatalf("status: %d %v", code, v)
		}
		return v
	}
	if p, ok := status()["paused"].([]any); !ok || len(p) != 0 {
		t.Errorf("status with nothing paused: paused %v, want []", status()["paused"])
	}

	if code, v := tcpCall(t, base, user, "POST", "/v1/pause/m1", ""); code != 403 || !strings.Contains(v["error"].(string), "admin") {
		t.Errorf("user token pauses: %d %v", code, v)
	}
	for _, c := range []struct{ name, kind string }{{"m1", "modem"}, {"hub", "connector"}} {
		code, v := tcpCall(t, base, admin, "POST", "/v1/pause/"+c.name, "")
		if code != 200 || v["name"] != c.name || v["kind"] != c.kind || v["paused"] != true || len(v) != 3 {
			t.Errorf("pause %s: %d %v", c.name, code, v)
		}
	}
	if code, v := tcpCall(t, base, admin, "POST", "/v1/pause/nope", ""); code != 404 || !strings.Contains(v["error"].(string), `no such modem or connector "nope"`) {
		t.Errorf("pause of an unknown name: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, admin, "POST", "/v1/resume/nope", ""); code != 404 || v["error"] == nil {
		t.Errorf("resume of an unknown name: %d %v", code, v)
	}
	st := status()
	m1, _ := st["modems"].(map[string]any)["m1"].(map[string]any)
	hub, _ := st["links"].(map[string]any)["hub"].(map[string]any)
	if p, _ := json.Marshal(st["paused"]); string(p) != `["hub","m1"]` || m1["paused"] != true || m1["state"] != "ready" || hub["paused"] != true || hub["state"] != "up" {
		t.Errorf("status: paused %s, m1 %v, hub %v", p, m1, hub)
	}
	if code, v := tcpCall(t, base, "", "GET", "/readyz", ""); code != 503 || len(v["modems_ready"].([]any)) != 0 {
		t.Errorf("readyz with the one modem paused: %d %v", code, v)
	}

	code, b := sock("POST", "/v1/resume/m1", "")
	if code != 200 || string(b) != "{\n  \"name\": \"m1\",\n  \"kind\": \"modem\",\n  \"paused\": false\n}\n" {
		t.Errorf("resume m1 on the socket: %d %s", code, b)
	}
	st = status()
	m1, _ = st["modems"].(map[string]any)["m1"].(map[string]any)
	if p, _ := json.Marshal(st["paused"]); string(p) != `["hub"]` || m1["paused"] != nil {
		t.Errorf("status after resume m1: paused %s, m1 %v", p, m1)
	}
	if code, v := tcpCall(t, base, "", "GET", "/readyz", ""); code != 200 {
		t.Errorf("readyz after resume: %d %v", code, v)
	}
	// The audit says who: the token on TCP, the socket's caller there.
	code, b = sock("GET", "/v1/audit", "")
	if code != 200 || !strings.Contains(string(b), `"who": "token:ops"`) || !strings.Contains(string(b), `"op": "pause"`) || !strings.Contains(string(b), `"op": "resume"`) {
		t.Errorf("audit: %d %s", code, b)
	}
}
