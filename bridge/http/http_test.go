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
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := bridge.New(st, nil)
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
	// A group as the dispatcher leaves it mid-send: one destination being
	// sent, two queued; and a blast where all 50 failed.
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
	sock := filepath.Join(dir, "outpost.sock")
	srv := &bhttp.Server{Socket: sock, Hub: hub, Log: hub.Log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		var resp *http.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err = c.Post("http://outpost"+path, "application/json", strings.NewReader(body))
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // the socket is not there yet
		}
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
		{"/v1/messages/" + mid + "/cancel", "", 200, "cancelled 2 of 3 destinations; not cancelled: 1 sending (being sent right now"},
		{"/v1/messages/" + mid + "/cancel", "", 409, ": 1 sending, 2 cancelled: nothing left to cancel (only a queued or scheduled message can be cancelled); 1 being sent right now"},
		{"/v1/messages/" + mid + "/retry", "", 409, ": 1 sending, 2 cancelled: nothing to retry"},
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
