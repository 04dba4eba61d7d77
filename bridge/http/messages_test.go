package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/store"
)

// The message management routes: GET /v1/messages refuses an unknown
// parameter, a bad limit, since or cursor (400); DELETE is 409 while a
// destination is being sent, 200 after, 404 then; mark is 400 for a bad
// body or a mark that does not apply, 404 for an unknown id.
func TestMessageRoutes(t *testing.T) {
	router := newRouter(t)
	st := router.Store
	m := &store.Message{Direction: store.Out, Peer: "+15555550100", Source: "test"}
	var did int64
	if err := st.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		d := &store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer}
		err := tx.InsertDelivery(d, "")
		did = d.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	call := request(t, router, filepath.Join(t.TempDir(), "s.sock"))

	for q, want := range map[string]string{
		"?when=now":           `unknown parameter \"when\"`,
		"?limit=0":            "limit must be a number from 1 to 1000",
		"?since=soon":         `since \"soon\"`,
		"?cursor=AAAA":        "is not one a listing returned",
		"?direction=sideways": `direction \"sideways\"`,
	} {
		if code, b := call(http.MethodGet, "/v1/messages"+q, ""); code != 400 || !strings.Contains(string(b), want) {
			t.Errorf("GET /v1/messages%s: %d %s", q, code, b)
		}
	}
	code, b := call(http.MethodGet, "/v1/messages?direction=out&state=queued&since=7d&limit=10", "")
	var page struct {
		Messages []struct{ ID, State string }
		Next     string
	}
	if json.Unmarshal(b, &page); code != 200 || len(page.Messages) != 1 || page.Messages[0].ID != m.ID || page.Messages[0].State != "queued" || page.Next != "" {
		t.Errorf("GET /v1/messages: %d %s", code, b)
	}

	if code, b := call(http.MethodPost, "/v1/messages/"+m.ID+"/mark", `{"read": true}`); code != 400 || !strings.Contains(string(b), "is outbound") {
		t.Errorf("mark read an outbound message: %d %s", code, b)
	}
	if code, b := call(http.MethodPost, "/v1/messages/"+m.ID+"/mark", `{"red": true}`); code != 400 || !strings.Contains(string(b), "unknown field") {
		t.Errorf("mark with a bad body: %d %s", code, b)
	}
	if code, b := call(http.MethodPost, "/v1/messages/nope/mark", `{"tag": "x"}`); code != 404 {
		t.Errorf("mark an unknown id: %d %s", code, b)
	}

	// Claimed by a dispatcher: being sent.
	if err := st.Update(context.Background(), func(tx *store.Tx) error {
		_, err := tx.SetDeliveryState(did, store.Transition{State: store.Sending})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if code, b := call(http.MethodDelete, "/v1/messages/"+m.ID, ""); code != 409 || !strings.Contains(string(b), "being sent right now") {
		t.Errorf("DELETE while sending: %d %s", code, b)
	}
	if err := st.Update(context.Background(), func(tx *store.Tx) error {
		_, err := tx.SetDeliveryState(did, store.Transition{State: store.Failed})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if code, b := call(http.MethodDelete, "/v1/messages/"+m.ID, ""); code != 200 {
		t.Errorf("DELETE: %d %s", code, b)
	}
	if code, b := call(http.MethodGet, "/v1/messages/"+m.ID, ""); code != 404 {
		t.Errorf("GET after DELETE: %d %s", code, b)
	}
	if code, b := call(http.MethodDelete, "/v1/messages/"+m.ID, ""); code != 404 {
		t.Errorf("DELETE again: %d %s", code, b)
	}
}
