package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestBanAndAuditRoutes: POST /v1/bans bans (400 for a bad address), GET
// lists with who, a send to the number is 400 naming the ban, DELETE
// /v1/bans/{addr} lifts it; GET /v1/audit lists the ban, the unban, a
// contact added and a hub requeue, each with who (the HTTP API) and the
// channel (http), and filters by who and since (400 for a bad since).
func TestBanAndAuditRoutes(t *testing.T) {
	router := newRouter(t)
	router.Add(smsStub{})
	raw := request(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		code, b := raw(method, path, body)
		var c bytes.Buffer
		if json.Compact(&c, b) != nil {
			return code, b
		}
		return code, c.Bytes()
	}
	if code, b := call(http.MethodPost, "/v1/bans", `{"addr":"+15550001111","reason":"spam","by":"desk"}`); code != 200 || !strings.Contains(string(b), `"changed":true`) {
		t.Errorf("POST /v1/bans: %d %s", code, b)
	}
	if code, b := call(http.MethodPost, "/v1/bans", `{"addr":"12"}`); code != 400 || !strings.Contains(string(b), `addr`) {
		t.Errorf("a bad address: %d %s", code, b)
	}
	if code, b := call(http.MethodGet, "/v1/bans", ""); code != 200 || !strings.Contains(string(b), `"by":"desk"`) || !strings.Contains(string(b), "tel:+15550001111") {
		t.Errorf("GET /v1/bans: %d %s", code, b)
	}
	if code, b := call(http.MethodPost, "/v1/messages", `{"to":"+15550001111","text":"hi"}`); code != 400 || !strings.Contains(string(b), "banned by desk") {
		t.Errorf("a send to a banned number: %d %s", code, b)
	}
	if code, b := call(http.MethodDelete, "/v1/bans/%2B15550001111", ""); code != 200 || !strings.Contains(string(b), `"changed":true`) {
		t.Errorf("DELETE /v1/bans: %d %s", code, b)
	}
	if code, b := call(http.MethodPost, "/v1/contacts", `{"name":"Ann","phones":["+15550001111"]}`); code >= 300 {
		t.Fatalf("POST /v1/contacts: %d %s", code, b)
	}
	m := &store.HubMessage{Topic: "dev/poison", Payload: []byte(`1`), QoS: 1}
	if err := router.Store.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.EnqueueHub(m); err != nil {
			return err
		}
		_, err := tx.SetAsideHub(m.ID, "dropped twice")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if code, b := call(http.MethodPost, "/v1/hub/set-aside/requeue", `{"all":true,"by":"ops"}`); code != 200 {
		t.Fatalf("requeue: %d %s", code, b)
	}
	var ans bridge.BanAnswer
	code, b := call(http.MethodGet, "/v1/audit?since=1h", "")
	if err := json.Unmarshal(b, &ans); code != 200 || err != nil {
		t.Fatalf("GET /v1/audit: %d %s", code, b)
	}
	var got []string
	for _, e := range ans.Audit {
		got = append(got, e.Op+" "+e.Who+" "+e.Channel)
	}
	want := "ban desk http|unban the HTTP API http|contact/add the HTTP API http|hub-requeue ops http"
	if strings.Join(got, "|") != want {
		t.Errorf("audit: %s\nwant %s", strings.Join(got, "|"), want)
	}
	if _, b := call(http.MethodGet, "/v1/audit?who=OPS", ""); strings.Count(string(b), `"op"`) != 1 {
		t.Errorf("audit of ops: %s", b)
	}
	if code, b := call(http.MethodGet, "/v1/audit?since=last+week", ""); code != 400 || !strings.Contains(string(b), "since") {
		t.Errorf("a bad since: %d %s", code, b)
	}
}
