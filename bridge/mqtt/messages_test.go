package mqtt

import (
	"fmt"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestMessageOpsOverMQTT: the message management operations answer on
// admin/<op>/reply as the CLI and HTTP do (list with filters, show, mark,
// rm, retry, cancel), audited with the client as who; a bad request or an
// unknown id gets ok:false with the reason.
func TestMessageOpsOverMQTT(t *testing.T) {
	b := newTestBroker(t, Options{})
	txt := "water pump broken"
	in := &store.Message{Peer: "+15550001111", Text: &txt, Source: "sms", FromAddr: "tel:+15550001111", State: store.Complete}
	if err := b.st.Update(t.Context(), func(tx *store.Tx) error { return b.c.router.StoreInbound(tx, in, "test") }); err != nil {
		t.Fatal(err)
	}
	ask, _ := adminClient(t, b, "ops-app")
	result := func(r map[string]any) map[string]any {
		t.Helper()
		m, _ := r["result"].(map[string]any)
		if r["ok"] != true || m == nil {
			t.Fatalf("reply %v", r)
		}
		return m
	}
	list := result(ask("messages", `{"direction": "in", "number": "00 1 555 000 1111", "limit": 10}`))
	if ms, _ := list["messages"].([]any); len(ms) != 1 || !strings.Contains(fmt.Sprint(ms[0]), in.ID) {
		t.Fatalf("admin/messages: %v", list)
	}
	if m := result(ask("mark", `{"id": "`+in.ID+`", "read": true, "tag": "pump", "by": "desk"}`)); m["read"] != true {
		t.Errorf("admin/mark: %v", m)
	}
	if m := result(ask("show", `{"id": "`+in.ID+`"}`)); !strings.Contains(fmt.Sprint(m["tags"]), "pump") {
		t.Errorf("admin/show after the mark: %v", m)
	}
	for _, c := range []struct{ op, payload, want string }{
		{"messages", `{"state": "bogus"}`, `state "bogus" is not a state`},
		{"messages", `{"id": "x"}`, `"messages" takes`},
		{"retry", `{"id": "nope"}`, "no such message"},
		{"cancel", `{}`, `"id": the message's id is needed`},
		{"mark", `{"id": "` + in.ID + `"} trailing`, "something after the object"},
	} {
		if r := ask(c.op, c.payload); r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), c.want) {
			t.Errorf("admin/%s %s: %v, want an error with %q", c.op, c.payload, r, c.want)
		}
	}
	if r := ask("rm", `{"id": "`+in.ID+`"}`); r["ok"] != true {
		t.Errorf("admin/rm: %v", r)
	}
	if r := ask("show", `{"id": "`+in.ID+`"}`); r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), "no such message") {
		t.Errorf("admin/show after rm: %v", r)
	}
	log, err := b.c.router.AuditLog(t.Context(), bridge.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range log {
		ops = append(ops, e.Op+" by "+e.Who)
	}
	want := []string{`mark by mqtt:ops-app (for "desk")`, "rm by mqtt:ops-app"}
	if strings.Join(ops, "; ") != strings.Join(want, "; ") {
		t.Errorf("audit: %q, want %q", ops, want)
	}
}
