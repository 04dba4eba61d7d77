package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/outpost-sms/outpost/store"
)

// The retry and cancel routes: 200 with the destinations changed, JSON
// errors with 404 for an unknown id, 409 for the wrong state, 400 for a
// bad body; the history says who asked.
func TestRetryAndCancelRoutes(t *testing.T) {
	hub := newHub(t)
	st := hub.Store
	// Two messages as the dispatcher would have left them: one failed,
	// one queued (no dispatcher runs here).
	ids := map[string]string{}
	for _, state := range []string{store.Failed, store.Queued} {
		m := &store.Message{Direction: store.Out, Peer: "+15555550100", Source: "test"}
		if err := st.Update(context.Background(), func(tx *store.Tx) error {
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
			return tx.InsertDelivery(&store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer, State: state}, state)
		}); err != nil {
			t.Fatal(err)
		}
		ids[state] = m.ID
	}
	// A group as a dispatcher leaves it mid-claim: one destination claimed
	// (sending) but not handed to a connector (no dispatcher runs here, so
	// none is), two queued; and a blast where all 50 failed. A destination
	// really being delivered is left to finish: bridge's
	// TestCancelGroupWhileSending and TestCancelRefusedWhileOnlySending.
	group := func(states ...string) string {
		m := &store.Message{Direction: store.Out, Peer: "group", Source: "test"}
		if err := st.Update(context.Background(), func(tx *store.Tx) error {
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
			for i, state := range states {
				d := &store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: fmt.Sprintf("+155555501%02d", i), State: state}
				if err := tx.InsertDelivery(d, state); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	mid := group(store.Sending, store.Queued, store.Queued)
	var fifty []string
	for range 50 {
		fifty = append(fifty, store.Failed)
	}
	blast := group(fifty...)
	post := serve(t, hub)
	for _, c := range []struct {
		path, body string
		code       int
		has        string
	}{
		{"/v1/messages/nosuchid/retry", "", 404, `no message with id "nosuchid"`},
		{"/v1/messages/nosuchid/cancel", "", 404, `no message with id "nosuchid"`},
		{"/v1/messages/" + ids[store.Queued] + "/retry", "", 409, ": 1 queued: nothing to retry (only a failed or expired message can be retried)"},
		{"/v1/messages/" + ids[store.Failed] + "/cancel", "", 409, ": 1 failed: nothing left to cancel (only a queued or scheduled message can be cancelled)"},
		{"/v1/messages/" + blast + "/cancel", "", 409, "message " + blast + ": 50 failed: nothing left to cancel"},
		{"/v1/messages/" + mid + "/cancel", "", 200, "cancelled 3 of 3 destinations"},
		{"/v1/messages/" + mid + "/cancel", "", 409, ": 3 cancelled: nothing left to cancel (only a queued or scheduled message can be cancelled)"},
		{"/v1/messages/" + mid + "/retry", "", 409, ": 3 cancelled: nothing to retry"},
		{"/v1/messages/" + ids[store.Failed] + "/retry", "{not json", 400, "request body"},
		{"/v1/messages/" + ids[store.Failed] + "/retry", `{"by": "ops dashboard"}`, 200, ""},
		{"/v1/messages/" + ids[store.Queued] + "/cancel", "", 200, ""},
		{"/v1/messages/" + ids[store.Queued] + "/cancel", "", 409, ": 1 cancelled: nothing left to cancel"},
	} {
		code, v := post(c.path, c.body)
		if code != c.code {
			t.Errorf("%s %s: %d %v, want %d", c.path, c.body, code, v, c.code)
			continue
		}
		e, _ := v["error"].(string)
		if code == 200 {
			e, _ = v["summary"].(string)
		}
		if c.has != "" && !strings.Contains(e, c.has) {
			t.Errorf("%s: %q lacks %q", c.path, e, c.has)
		}
		if strings.Count(e, "failed") > 1 {
			t.Errorf("%s: a state repeated: %q", c.path, e)
		}
		if code == 200 && (v["ok"] != true || v["deliveries"] == nil) {
			t.Errorf("%s: %v", c.path, v)
		}
	}
	for state, want := range map[string]string{store.Failed: "queued: retried by ops dashboard", store.Queued: "cancelled: cancelled by the HTTP API"} {
		view, err := hub.Message(context.Background(), ids[state])
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range view.Events {
			found = found || strings.HasPrefix(e.State+": "+e.Detail, want)
		}
		if !found {
			t.Errorf("history of the %s message lacks %q: %+v", state, want, view.Events)
		}
	}
}

func newHub(t *testing.T) *bridge.Hub {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return bridge.New(st, nil)
}

// serve runs the API for hub on a socket and returns a function that
// POSTs a body to a path and returns the status and the JSON answer.
func serve(t *testing.T, hub *bridge.Hub) func(path, body string) (int, map[string]any) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "outpost.sock")
	srv := &bhttp.Server{Socket: sock, Hub: hub, Log: hub.Log}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	return func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := c.Post("http://outpost"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: not JSON: %q", path, b)
		}
		return resp.StatusCode, v
	}
}

// smsStub is an SMS connector that sends nothing (no dispatcher runs):
// Submit needs one to store a request.
type smsStub struct{}

func (smsStub) Name() string                                 { return "sms" }
func (smsStub) Run(ctx context.Context, _ *bridge.Hub) error { <-ctx.Done(); return nil }
func (smsStub) Deliver(context.Context, store.Message, store.Delivery) (bridge.Outcome, error) {
	return bridge.Outcome{}, nil
}

// TestSendRefusesBadBodies: POST /v1/messages takes one JSON object
// followed by nothing but white space ("{…}garbage" was stored: 201);
// "port" is checked before what it goes with; nothing bad is stored.
func TestSendRefusesBadBodies(t *testing.T) {
	hub := newHub(t)
	hub.Add(smsStub{})
	post := serve(t, hub)
	for _, c := range []struct {
		body string
		code int
		has  string
	}{
		{`{"to":"+15555550100","text":"hi"}garbage`, 400, `something after the request at byte 33: "garbage"`},
		{`{"to":"+15555550100","text":"hi"}{"to":"+15555550100","text":"again"}`, 400, "something after the request"},
		{`{"to":"+15555550100","data_hex":"","port":70000}`, 400, `"port" 70000: must be 1–65535`},
		{`{"to":"+15555550100","data_hex":""}`, 400, `"data_hex" is empty`},
		{"{\"to\":\"+15555550100\",\"text\":\"hi\"}\r\n", 201, ""},
	} {
		code, v := post("/v1/messages", c.body)
		if e, _ := v["error"].(string); code != c.code || !strings.Contains(e, c.has) {
			t.Errorf("%q: %d %v, want %d with %q", c.body, code, v, c.code, c.has)
		}
	}
	q, err := hub.QueueDepths(context.Background())
	if err != nil || q["sms"][store.Queued] != 1 {
		t.Errorf("queued %v (%v), want the one good request", q, err)
	}
}
