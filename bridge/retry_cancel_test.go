package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// A cancelled message is final: the dispatcher does not send it and the
// expiry loop does not expire it; the history says who cancelled it.
func TestCancelIsFinal(t *testing.T) {
	f := &fake{ready: make(chan struct{})}
	h, start := newHub(t, waiting{f})
	start()
	exp := time.Now().Add(2 * time.Second)
	a := submitReq(t, h, bridge.SendRequest{Text: "cancel me", Expires: exp})
	b := submitReq(t, h, bridge.SendRequest{Text: "let me expire", Expires: exp})
	res, err := h.Cancel(context.Background(), a, "tester")
	if err != nil || len(res.Deliveries) != 1 || res.Deliveries[0].State != store.Cancelled {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	waitState(t, h, b, store.Expired) // the expiry loop went past a's expiry
	close(f.ready)
	waitState(t, h, submit(t, h, "after"), store.Sent)
	v := waitState(t, h, a, store.Cancelled)
	if f.Calls() != 1 {
		t.Errorf("%d sends, want 1 (only the one after): %q", f.Calls(), f.texts)
	}
	if hist := details(v); !strings.Contains(hist, "cancelled: cancelled by tester") || strings.Contains(hist, "expired") {
		t.Errorf("history:\n%s", hist)
	}
	if _, err := h.Cancel(context.Background(), a, "tester"); !errors.Is(err, store.ErrWrongState) {
		t.Errorf("cancel twice: %v, want ErrWrongState", err)
	}
	if _, err := h.Cancel(context.Background(), "no-such-id", "tester"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancel unknown: %v, want ErrNotFound", err)
	}
}

// A group message being sent is cancelled: every destination still
// queued is cancelled at once (who asked in each one's history), the ones
// being sent right now finish their attempt and are counted in the
// answer; a cancel with nothing left is refused with the states counted,
// not listed one word per destination.
func TestCancelGroupWhileSending(t *testing.T) {
	f := &fake{entered: make(chan struct{}), release: make(chan struct{})}
	h, start := newHub(t, f)
	var to []string
	for i := range 40 {
		to = append(to, fmt.Sprintf("+1555555%04d", i))
	}
	h.Groups = map[string][]string{"all": to}
	start()
	id := submitReq(t, h, bridge.SendRequest{To: []string{"group:all"}, Text: "blast"})
	<-f.entered // one destination is in Deliver: state sending
	res, err := h.Cancel(context.Background(), id, "tester")
	go func() { // let the ones being sent finish
		close(f.release)
		for range f.entered {
		}
	}()
	if err != nil {
		t.Fatalf("cancel while one destination is being sent: %v", err)
	}
	sending := res.Unchanged[store.Sending]
	// Only the one inside Deliver goes on: the others the dispatcher had
	// claimed with it (state sending, not yet handed over) are cancelled.
	if len(res.Deliveries) != 39 || sending != 1 || len(res.Unchanged) != 1 {
		t.Fatalf("cancelled %d, unchanged %v; want 39 cancelled and the one being sent left", len(res.Deliveries), res.Unchanged)
	}
	for _, d := range res.Deliveries {
		if d.State != store.Cancelled {
			t.Errorf("%s: %s", d.Recipient, d.State)
		}
	}
	want := fmt.Sprintf("cancelled %d of 40 destinations; not cancelled: %d sending (being sent right now: they finish this attempt; cancel again after it to catch any put back in the queue)",
		len(res.Deliveries), sending)
	if res.Summary != want {
		t.Errorf("summary %q\nwant    %q", res.Summary, want)
	}
	var v bridge.MessageView
	waitFor(t, "the destinations being sent to finish", func() bool {
		v, _ = h.Message(context.Background(), id)
		n := 0
		for _, d := range v.Deliveries {
			if d.State == store.Sent {
				n++
			}
		}
		return n == sending
	})
	if f.Calls() != sending {
		t.Errorf("%d sent, want the %d being sent when cancelled", f.Calls(), sending)
	}
	if n := strings.Count(details(v), "cancelled: cancelled by tester"); n != len(res.Deliveries) {
		t.Errorf("%d cancellations in the history, want %d:\n%s", n, len(res.Deliveries), details(v))
	}
	_, err = h.Cancel(context.Background(), id, "tester")
	wantErr := fmt.Sprintf("message %s: %d sent, %d cancelled: nothing left to cancel", id, sending, len(res.Deliveries))
	if !errors.Is(err, store.ErrWrongState) || !strings.Contains(err.Error(), wantErr) || len(err.Error()) > 200 {
		t.Errorf("cancel again: %v\nwant ErrWrongState with %q", err, wantErr)
	}
}

// Nothing but a destination being sent: the cancel is refused and says
// when to try again.
func TestCancelRefusedWhileOnlySending(t *testing.T) {
	f := &fake{entered: make(chan struct{}), release: make(chan struct{})}
	h, start := newHub(t, f)
	start()
	id := submit(t, h, "on its way")
	<-f.entered
	_, err := h.Cancel(context.Background(), id, "tester")
	close(f.release)
	if !errors.Is(err, store.ErrWrongState) || !strings.Contains(err.Error(), "1 sending: nothing left to cancel") ||
		!strings.Contains(err.Error(), "cancel again") {
		t.Errorf("cancel while sending: %v", err)
	}
	waitState(t, h, id, store.Sent)
}

// A retry of a group with nothing failed counts the states in its
// refusal.
func TestRetryRefusalCountsStates(t *testing.T) {
	f := &fake{results: []error{bridge.Permanent(errors.New("bad number"))}}
	h, start := newHub(t, f)
	start()
	id := submitReq(t, h, bridge.SendRequest{To: []string{"+15555550100", "+15555550101", "+15555550102"}, Text: "x"})
	waitSettled(t, h, id)
	res, err := h.Retry(context.Background(), id, "tester")
	if err != nil || len(res.Deliveries) != 1 || res.Unchanged[store.Sent] != 2 || res.Summary != "queued again 1 of 3 destinations; not retried: 2 sent" {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	waitState(t, h, id, store.Sent)
	_, err = h.Retry(context.Background(), id, "tester")
	if !errors.Is(err, store.ErrWrongState) || !strings.Contains(err.Error(), "message "+id+": 3 sent: nothing to retry") {
		t.Errorf("retry of a sent message: %v", err)
	}
}

// waitSettled waits until none of a message's destinations is queued or
// sending.
func waitSettled(t *testing.T, h *bridge.Router, id string) bridge.MessageView {
	t.Helper()
	var v bridge.MessageView
	waitFor(t, "every destination tried", func() bool {
		v, _ = h.Message(context.Background(), id)
		for _, d := range v.Deliveries {
			if d.State == store.Queued || d.State == store.Sending {
				return false
			}
		}
		return true
	})
	return v
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Retry puts a failed message back with its attempts reset and says so;
// an expired one loses its expiry; a sent one cannot be retried.
func TestRetryResetsAttempts(t *testing.T) {
	boom := errors.New("no answer")
	f := &fake{results: []error{boom, boom, boom}, ready: make(chan struct{})}
	close(f.ready)
	h, start := newHub(t, waiting{f})
	h.MaxAttempts = 3
	start()
	id := submit(t, h, "again")
	waitState(t, h, id, store.Failed)
	res, err := h.Retry(context.Background(), id, "tester")
	if err != nil || len(res.Deliveries) != 1 || res.Deliveries[0].Attempts != 0 || res.Deliveries[0].State != store.Queued {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	v := waitState(t, h, id, store.Sent)
	if v.Deliveries[0].Attempts != 1 {
		t.Errorf("attempts %d after the retry, want 1", v.Deliveries[0].Attempts)
	}
	if hist := details(v); !strings.Contains(hist, "queued: retried by tester: was failed, attempts reset to 0 (were 3)") {
		t.Errorf("history:\n%s", hist)
	}
	if _, err := h.Retry(context.Background(), id, "tester"); !errors.Is(err, store.ErrWrongState) {
		t.Errorf("retry of a sent message: %v, want ErrWrongState", err)
	}
	if _, err := h.Retry(context.Background(), "no-such-id", "tester"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("retry unknown: %v, want ErrNotFound", err)
	}

	// Expired while the connector was away: retried, it goes out.
	g := &fake{ready: make(chan struct{})}
	h2, start2 := newHub(t, waiting{g})
	start2()
	e := submitReq(t, h2, bridge.SendRequest{Text: "late", Expires: time.Now().Add(300 * time.Millisecond)})
	waitState(t, h2, e, store.Expired)
	if _, err := h2.Retry(context.Background(), e, "tester"); err != nil {
		t.Fatal(err)
	}
	close(g.ready)
	v = waitState(t, h2, e, store.Sent)
	if hist := details(v); !strings.Contains(hist, "was expired, attempts reset to 0 (were 0), expiry removed") {
		t.Errorf("history:\n%s", hist)
	}
}
