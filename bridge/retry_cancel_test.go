package bridge_test

import (
	"context"
	"errors"
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
	ds, err := h.Cancel(context.Background(), a, "tester")
	if err != nil || len(ds) != 1 || ds[0].State != store.Cancelled {
		t.Fatalf("cancel: %+v, %v", ds, err)
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

// A message being sent right now is not cancelled: its parts may be with
// the network already. The refusal says why and changes nothing.
func TestCancelRefusedWhileSending(t *testing.T) {
	f := &fake{entered: make(chan struct{}), release: make(chan struct{})}
	h, start := newHub(t, f)
	start()
	id := submit(t, h, "on its way")
	<-f.entered
	_, err := h.Cancel(context.Background(), id, "tester")
	close(f.release)
	if !errors.Is(err, store.ErrWrongState) || !strings.Contains(err.Error(), "being sent") {
		t.Errorf("cancel while sending: %v", err)
	}
	waitState(t, h, id, store.Sent)
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
	ds, err := h.Retry(context.Background(), id, "tester")
	if err != nil || len(ds) != 1 || ds[0].Attempts != 0 || ds[0].State != store.Queued {
		t.Fatalf("retry: %+v, %v", ds, err)
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
