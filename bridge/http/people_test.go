package http_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeopleRoutes: POST /v1/people/<op> runs the people operations: 200
// with the answer; 400 for a bad body or address, with the reason; 404
// for an op that is not one; a send to a number that opted out is
// refused (400) naming in_reply_to.
func TestPeopleRoutes(t *testing.T) {
	router := newRouter(t)
	router.Add(smsStub{})
	post := serve(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
	if code, v := post("/v1/people/optout-add", `{"addr":"+15550001111"}`); code != 200 || v["changed"] != true {
		t.Errorf("optout-add: %d %v", code, v)
	}
	if code, v := post("/v1/people/optout-list", ``); code != 200 || !strings.Contains(toString(v["optouts"]), "tel:+15550001111") {
		t.Errorf("optout-list: %d %v", code, v)
	}
	if code, v := post("/v1/people/topic-subscribe", `{"addr":"+15550002222","topic":"flood","extra":1}`); code != 400 || !strings.Contains(v["error"].(string), "extra") {
		t.Errorf("an unknown field: %d %v", code, v)
	}
	if code, v := post("/v1/people/topic-subscribe", `{"addr":"not a number","topic":"flood"}`); code != 400 || !strings.Contains(v["error"].(string), `"addr"`) {
		t.Errorf("a bad address: %d %v", code, v)
	}
	if code, v := post("/v1/people/reboot", `{}`); code != 404 || !strings.Contains(v["error"].(string), "optout-list") {
		t.Errorf("an unknown op: %d %v", code, v)
	}
	if code, v := post("/v1/messages", `{"to":"+15550001111","text":"hi"}`); code != 400 || !strings.Contains(v["error"].(string), "in_reply_to") {
		t.Errorf("a send to an opted-out number: %d %v", code, v)
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
