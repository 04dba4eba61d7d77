package bridge_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

func TestPriorityGoesFirst(t *testing.T) {
	f := &fake{ready: make(chan struct{})}
	h, start := newHub(t, waiting{f})
	start()
	var ids []string
	for _, r := range []bridge.SendRequest{
		{Text: "low 1"}, {Text: "low 2"}, {Text: "urgent", Priority: 9}, {Text: "middle", Priority: 5}, {Text: "low 3"},
	} {
		ids = append(ids, submitReq(t, h, r))
	}
	close(f.ready) // the modem comes up with five messages waiting
	for _, id := range ids {
		waitState(t, h, id, store.Sent)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"urgent", "middle", "low 1", "low 2", "low 3"}; !slices.Equal(f.texts, want) {
		t.Fatalf("sent in order %q, want %q", f.texts, want)
	}
}

func TestNotBeforeWaitsScheduled(t *testing.T) {
	f := &fake{}
	h, start := newHub(t, f)
	var mu sync.Mutex
	var states []string
	h.OnStatus(func(c bridge.StatusChange) {
		mu.Lock()
		states = append(states, c.State)
		mu.Unlock()
	})
	start()
	at := time.Now().Add(400 * time.Millisecond)
	id := submitReq(t, h, bridge.SendRequest{Text: "later", NotBefore: at})
	v, err := h.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != store.Scheduled || !v.NotBefore.Equal(at.Truncate(time.Millisecond)) || !strings.Contains(details(v), "scheduled for") {
		t.Fatalf("state %q not_before %v, events:\n%s", v.State, v.NotBefore, details(v))
	}
	now := submitReq(t, h, bridge.SendRequest{Text: "now"})
	waitState(t, h, now, store.Sent)
	v = waitState(t, h, id, store.Sent)
	f.mu.Lock()
	first := f.at[1]
	f.mu.Unlock()
	if first.Before(at) {
		t.Fatalf("sent at %v, before not_before %v", first, at)
	}
	mu.Lock()
	published := slices.Contains(states, store.Scheduled)
	mu.Unlock()
	if !published {
		t.Fatalf("no %q status published", store.Scheduled)
	}
	// A time already past is no reason to wait.
	past := submitReq(t, h, bridge.SendRequest{Text: "past", NotBefore: time.Now().Add(-time.Hour)})
	waitState(t, h, past, store.Sent)
}

func TestExpiresWhileModemAway(t *testing.T) {
	f := &fake{ready: make(chan struct{})} // never ready
	h, start := newHub(t, waiting{f})
	start()
	id := submitReq(t, h, bridge.SendRequest{Text: "today only", Expires: time.Now().Add(300 * time.Millisecond)})
	scheduled := submitReq(t, h, bridge.SendRequest{Text: "window", NotBefore: time.Now().Add(time.Hour), Expires: time.Now().Add(350*time.Millisecond + time.Hour)})
	v := waitState(t, h, id, store.Expired)
	if !strings.Contains(details(v), "not sent: expired at") {
		t.Fatalf("events:\n%s", details(v))
	}
	if v, _ := h.Message(context.Background(), scheduled); v.State != store.Scheduled {
		t.Fatalf("the message scheduled in an hour is %q", v.State)
	}
	if f.Calls() != 0 {
		t.Fatalf("%d deliveries attempted", f.Calls())
	}
}

func TestExpiresBetweenRetries(t *testing.T) {
	f := &fake{results: []error{errors.New("network busy")}}
	h, start := newHub(t, f)
	h.RetryMin, h.RetryMax = time.Hour, time.Hour
	start()
	id := submitReq(t, h, bridge.SendRequest{Text: "x", Expires: time.Now().Add(500 * time.Millisecond)})
	v := waitState(t, h, id, store.Expired)
	if f.Calls() != 1 || !strings.Contains(details(v), "attempt 1 failed") {
		t.Fatalf("%d calls, events:\n%s", f.Calls(), details(v))
	}
}

func TestSubmitRefusesImpossibleTimes(t *testing.T) {
	h, _ := newHub(t, &fake{})
	now := time.Now()
	for _, c := range []struct {
		req  bridge.SendRequest
		want string
	}{
		{bridge.SendRequest{Expires: now.Add(-time.Minute)}, "already passed"},
		{bridge.SendRequest{NotBefore: now.Add(2 * time.Hour), Expires: now.Add(time.Hour)}, "could never be sent"},
		{bridge.SendRequest{Priority: 10}, "must be -1–9"},
		{bridge.SendRequest{To: []string{"group:nobody"}}, `unknown group "nobody"`},
	} {
		if c.req.To == nil {
			c.req.To = []string{"+15555550100"}
		}
		c.req.Text = "x"
		_, err := h.Submit(context.Background(), c.req)
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.req, err, c.want)
		}
	}
}

func TestGroupAddresses(t *testing.T) {
	h, start := newHub(t, &fake{})
	h.Groups = map[string][]string{"nurses": {"+15555550101", "+15555550102"}}
	start()
	id := submitReq(t, h, bridge.SendRequest{To: []string{"group:nurses", "+15555550102", "+15555550103"}, Text: "meeting at 3"})
	v := waitState(t, h, id, store.Sent)
	var to []string
	for _, d := range v.Deliveries {
		to = append(to, d.Recipient)
	}
	if want := []string{"+15555550101", "+15555550102", "+15555550103"}; !slices.Equal(to, want) {
		t.Fatalf("delivered to %v, want %v", to, want)
	}
	if !strings.Contains(details(v), "group nurses: 2 numbers") {
		t.Fatalf("events:\n%s", details(v))
	}
}
