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
	router := newRouter(t)
	st := router.Store
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
	post := serve(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
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
		view, err := router.Message(context.Background(), ids[state])
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

func newRouter(t *testing.T) *bridge.Router {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return bridge.New(st, nil)
}

// serve runs the API for hub on sock until the test ends and returns a
// function that POSTs body to path and returns the HTTP status and the
// JSON answer.
func serve(t *testing.T, router *bridge.Router, sock string) func(path, body string) (int, map[string]any) {
	t.Helper()
	call := request(t, router, sock)
	return func(path, body string) (int, map[string]any) {
		t.Helper()
		code, b := call(http.MethodPost, path, body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: not JSON: %q", path, b)
		}
		return code, v
	}
}

// request runs the API for hub on sock until the test ends and returns a
// function that sends a request and returns the status and the answer.
func request(t testing.TB, router *bridge.Router, sock string) func(method, path, body string) (int, []byte) {
	t.Helper()
	srv := &bhttp.Server{Socket: sock, Router: router, Log: router.Log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	return func(method, path, body string) (int, []byte) {
		t.Helper()
		var resp *http.Response
		var err error
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest(method, "http://outpost"+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if resp, err = c.Do(req); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // the socket is not there yet
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
}

// smsStub is an SMS connector that sends nothing (no dispatcher runs):
// Submit needs one to store a request.
type smsStub struct{}

func (smsStub) Name() string                                    { return "sms" }
func (smsStub) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (smsStub) Deliver(context.Context, store.Message, store.Delivery) (bridge.Outcome, error) {
	return bridge.Outcome{}, nil
}

// TestSendRefusesBadBodies: POST /v1/messages takes one JSON object
// followed by nothing but white space ("{…}garbage" was stored: 201);
// "port" is checked before what it goes with; nothing bad is stored.
func TestSendRefusesBadBodies(t *testing.T) {
	router := newRouter(t)
	router.Add(smsStub{})
	post := serve(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
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
	q, err := router.QueueDepths(context.Background())
	if err != nil || q["sms"][store.Queued] != 1 {
		t.Errorf("queued %v (%v), want the one good request", q, err)
	}
}

// The set-aside routes: GET /v1/hub/set-aside lists the messages the hub
// kept refusing; POST /v1/hub/set-aside/requeue puts the ones named (or
// all) back at the end of the hub queue, 404 for an id not set aside
// (nothing moves), 400 for a body that names none, or both ids and all.
func TestHubSetAsideRoutes(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	router := bridge.New(st, nil)
	var ids []int64
	for _, topic := range []string{"dev/poison/1", "dev/ok", "dev/poison/2"} {
		m := &store.HubMessage{Topic: topic, Payload: []byte(`{"v":1}`), QoS: 1}
		if err := st.Update(context.Background(), func(tx *store.Tx) error {
			if err := tx.EnqueueHub(m); err != nil {
				return err
			}
			if topic == "dev/ok" {
				return nil
			}
			_, err := tx.SetAsideHub(m.ID, "the hub dropped the connection twice")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	call := request(t, router, filepath.Join(dir, "outpost.sock"))
	list := func() []store.HubSetAside {
		t.Helper()
		code, b := call(http.MethodGet, "/v1/hub/set-aside", "")
		var l []store.HubSetAside
		if err := json.Unmarshal(b, &l); code != 200 || err != nil {
			t.Fatalf("GET /v1/hub/set-aside: %d %s", code, b)
		}
		return l
	}
	if l := list(); len(l) != 2 || l[0].ID != ids[2] || l[1].ID != ids[0] || l[0].Topic != "dev/poison/2" ||
		l[0].Reason != "the hub dropped the connection twice" || l[0].Bytes != len(`{"v":1}`) {
		t.Fatalf("set aside: %+v", l)
	}
	for _, c := range []struct {
		body string
		code int
		has  string
	}{
		{"", 400, "request body"},
		{"{}", 400, "nothing to requeue"},
		{`{"ids": [1], "all": true}`, 400, "exclude each other"},
		{`{"ids": ["x"]}`, 400, "request body"},
		{`{"id": 1}`, 400, "unknown field"},
		{fmt.Sprintf(`{"ids": [%d, %d]}`, ids[0], ids[1]), 404, fmt.Sprintf("no message set aside with id %d", ids[1])},
	} {
		code, b := call(http.MethodPost, "/v1/hub/set-aside/requeue", c.body)
		if code != c.code || !strings.Contains(string(b), c.has) {
			t.Errorf("requeue %s: %d %s, want %d with %q", c.body, code, b, c.code, c.has)
		}
	}
	if l := list(); len(l) != 2 {
		t.Fatalf("a refused requeue moved something: %+v", l)
	}
	queue := func() []store.HubMessage {
		var q []store.HubMessage
		st.View(context.Background(), func(tx *store.Tx) (err error) { q, err = tx.HubBatch(0, 10); return })
		return q
	}
	code, b := call(http.MethodPost, "/v1/hub/set-aside/requeue", fmt.Sprintf(`{"ids": [%d], "by": "ops"}`, ids[0]))
	var r struct {
		OK       bool                `json:"ok"`
		Requeued []store.HubRequeued `json:"requeued"`
	}
	if err := json.Unmarshal(b, &r); code != 200 || err != nil || !r.OK || len(r.Requeued) != 1 || r.Requeued[0].ID != ids[0] {
		t.Fatalf("requeue %d: %d %s", ids[0], code, b)
	}
	if q := queue(); len(q) != 2 || q[1].ID != r.Requeued[0].QueueID || q[1].Topic != "dev/poison/1" || q[1].ID <= ids[2] {
		t.Fatalf("queue after requeue: %+v", q)
	}
	if code, b = call(http.MethodPost, "/v1/hub/set-aside/requeue", `{"all": true}`); code != 200 || !strings.Contains(string(b), "dev/poison/2") {
		t.Fatalf("requeue all: %d %s", code, b)
	}
	if l, q := list(), queue(); len(l) != 0 || len(q) != 3 || q[2].Topic != "dev/poison/2" {
		t.Fatalf("after requeue all: set aside %+v, queue %+v", l, q)
	}
}

// A send to a group that lists a number twice is answered 201 with a
// note that the number gets one SMS.
func TestSendNotesGroupRepeats(t *testing.T) {
	router := newRouter(t)
	router.Add(smsStub{})
	router.Groups = map[string][]string{"nurses": {"+15555550101", "+15555550101"}}
	post := serve(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
	code, v := post("/v1/messages", `{"to":"group:nurses","text":"hi"}`)
	notes, _ := v["notes"].([]any)
	if code != 201 || len(notes) != 1 || notes[0] != "group nurses: 1 number; listed more than once, one delivery each: +15555550101" {
		t.Errorf("201 with a note wanted: %d %v", code, v)
	}
	if code, v := post("/v1/messages", `{"to":"+15555550100","text":"hi"}`); code != 201 || v["notes"] != nil {
		t.Errorf("a send without repeats: %d %v", code, v)
	}
}
