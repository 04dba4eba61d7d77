package http_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/outpost-sms/outpost/store"
)

// TestRecoveredPanic: a handler that panics is answered with a JSON 500
// that says so (the connection was cut, and the CLI said "no daemon is
// running"); the server goes on.
func TestRecoveredPanic(t *testing.T) {
	h := bhttp.RecoverPanics(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]int
		m["x"]++
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/contacts/import", nil))
	var e struct{ Error string }
	if w.Code != 500 || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "internal error in POST /v1/contacts/import (assignment to entry in nil map)") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// TestContactsWhoAndTargets: the contacts and groups endpoints take "by"
// like the others; a group removed by another spelling is audited by
// its stored name; a stray quote in an import is a 400; trailing text
// after the JSON of a people operation is refused.
func TestContactsWhoAndTargets(t *testing.T) {
	router := newRouter(t)
	call := request(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
	for _, c := range []struct {
		method, path, body string
		code               int
		has                string
	}{
		{"POST", "/v1/contacts", `{"name": "Amina", "phones": ["+15555550101"], "by": "nurse amina"}`, 201, `"Amina"`},
		{"PATCH", "/v1/contacts/Amina", `{"email": "amina@example.org", "by": "nurse amina"}`, 200, `amina@example.org`},
		{"POST", "/v1/groups", `{"name": "g1", "by": "nurse amina"}`, 201, `"g1"`},
		{"POST", "/v1/groups/G1/members", `{"add": ["Amina"], "by": "nurse amina"}`, 200, `"members": 1`},
		{"DELETE", "/v1/groups/G1", `{"by": "nurse amina"}`, 200, `"removed": "g1"`},
		{"DELETE", "/v1/contacts/Amina", `{"by": "nurse amina"}`, 200, `"removed"`},
		{"POST", "/v1/contacts/import", "name,phones\n\"Unclosed,+255700000009\n", 400, `line 2`},
		{"POST", "/v1/people/optout-remove", `{"addr": "+15555550101"} trailing`, 400, `something after the object`},
		{"POST", "/v1/bans", `{"addr": "+15555550101"}{}`, 400, `something after the object`},
	} {
		code, b := call(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(string(b), c.has) {
			t.Errorf("%s %s %s: %d %s, want %d with %s", c.method, c.path, c.body, code, b, c.code, c.has)
		}
	}
	log, err := router.AuditLog(context.Background(), bridge.AuditQuery{Since: time.Time{}})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range log {
		ops = append(ops, e.Op+" "+e.Target)
		if e.Who != "nurse amina" {
			t.Errorf("%s: who %q", e.Op, e.Who)
		}
	}
	if got := strings.Join(ops, ", "); got != "contact/add 1, contact/edit 1, group/add g1, group/members g1, group/rm g1, contact/rm 1" {
		t.Errorf("audited %s", got)
	}
}

// TestMessageFilters: an unknown state or a tag that cannot be one is a
// 400 naming the valid states (it gave an empty list); a number is read
// as sends read it (tel:…, spaces).
func TestMessageFilters(t *testing.T) {
	router := newRouter(t)
	m := &store.Message{Direction: store.Out, Peer: "+254712345678", Source: "test"}
	if err := router.Store.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		return tx.InsertDelivery(&store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer}, "")
	}); err != nil {
		t.Fatal(err)
	}
	call := request(t, router, filepath.Join(t.TempDir(), "s.sock"))
	for q, want := range map[string]string{
		"?state=bogus":         `state \"bogus\" is not a state: give one of complete, incomplete`,
		"?tag=two%20words":     `tag \"two words\": a tag is one word`,
		"?state=failed&tag=a,": `tag \"a,\"`,
	} {
		if code, b := call("GET", "/v1/messages"+q, ""); code != 400 || !strings.Contains(string(b), want) {
			t.Errorf("GET /v1/messages%s: %d %s", q, code, b)
		}
	}
	for _, n := range []string{"+254712345678", "tel:+254712345678", "+254 712 345 678", "00254712345678"} {
		code, b := call("GET", "/v1/messages?number="+url.QueryEscape(n), "")
		var page struct{ Messages []struct{ ID string } }
		if json.Unmarshal(b, &page); code != 200 || len(page.Messages) != 1 || page.Messages[0].ID != m.ID {
			t.Errorf("GET /v1/messages?number=%s: %d %s", n, code, b)
		}
	}
}
