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

// TestStatsRoute: GET /v1/stats answers the router's statistics of a
// number (given in any form a send takes) and refuses an unknown
// parameter, a bad since, a bad number and an unknown modem with 400.
func TestStatsRoute(t *testing.T) {
	router := newRouter(t)
	router.Add(smsStub{})
	router.ModemIDs = []string{"m1"}
	txt := "hi"
	in := &store.Message{Peer: "+15555550100", Modem: "m1", Text: &txt, Source: "sms", FromAddr: "tel:+15555550100", State: store.Complete}
	if err := router.Store.Update(context.Background(), func(tx *store.Tx) error { return router.StoreInbound(tx, in, "test") }); err != nil {
		t.Fatal(err)
	}
	call := request(t, router, filepath.Join(t.TempDir(), "s.sock"))
	for q, want := range map[string]string{
		"?when=now":             `unknown parameter \"when\"`,
		"?since=soon":           `since \"soon\": want days (7d)`,
		"?since=1d&since=2d":    `given 2 times`,
		"?modem=m2":             `modem \"m2\": no such modem (known: m1)`,
		"?number=%2B12":         `bad phone number`,
		"?number=group%3Astaff": `not of a group`,
	} {
		if code, b := call(http.MethodGet, "/v1/stats"+q, ""); code != 400 || !strings.Contains(string(b), want) {
			t.Errorf("GET /v1/stats%s: %d %s, want 400 with %s", q, code, b, want)
		}
	}
	code, b := call(http.MethodGet, "/v1/stats?number=tel%3A%2B15555550100&since=2d&modem=m1", "")
	var st struct {
		OK     bool
		Sender struct {
			Addr     string
			In       int
			LastSeen string `json:"last_seen"`
		}
		Modems []struct {
			Modem            string
			MessagesReceived int `json:"messages_received"`
		}
		Channels []struct {
			Channel string
			In      int
		}
	}
	if err := json.Unmarshal(b, &st); err != nil || code != 200 || !st.OK || st.Sender.Addr != "tel:+15555550100" || st.Sender.In != 1 || st.Sender.LastSeen == "" ||
		len(st.Modems) != 1 || st.Modems[0].MessagesReceived != 1 || len(st.Channels) < 7 || st.Channels[0].Channel != "sms" || st.Channels[0].In != 1 {
		t.Errorf("GET /v1/stats: %d %s", code, b)
	}
	if code, b := call(http.MethodGet, "/v1/stats", ""); code != 200 || strings.Contains(string(b), `"sender"`) {
		t.Errorf("GET /v1/stats without a number: %d %s", code, b)
	}
}
