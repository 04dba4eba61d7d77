package bridge_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// An outage (no network, SMSC busy, a server that does not answer) lasting
// far longer than MaxAttempts tries does not use up the message's
// attempts: it goes out when the destination is back, as attempt 1.
func TestOutageDoesNotUseUpAttempts(t *testing.T) {
	down := bridge.Outage(errors.New("+CMS ERROR: 331 (no network service)"))
	f := &fake{}
	for range 12 {
		f.results = append(f.results, down)
	}
	h, start := newHub(t, f)
	h.MaxAttempts = 3
	start()
	id := submit(t, h, "hello")
	v := waitState(t, h, id, store.Sent)
	if f.Calls() != 13 || v.Deliveries[0].Attempts != 1 {
		t.Errorf("calls %d (want 13), attempts %d (want 1):\n%s", f.Calls(), v.Deliveries[0].Attempts, details(v))
	}
	if hist := details(v); !strings.Contains(hist, "not counted: sms is unavailable, waiting for it: +CMS ERROR: 331") {
		t.Errorf("the history does not say the outage was not counted:\n%s", hist)
	}
}

// While its destination is down, a connector is waited for as a whole: one
// message probes it (with backoff), the others are not tried one by one;
// when it is back, all go out, each on its first attempt.
func TestOutageWaitsPerConnector(t *testing.T) {
	down := bridge.Outage(errors.New("connection refused"))
	f := &fake{results: []error{down, down, down, down, down, down}}
	h, start := newHub(t, f)
	h.RetryMin, h.RetryMax = 100*time.Millisecond, 200*time.Millisecond
	var ids []string
	for i := range 5 {
		ids = append(ids, submit(t, h, fmt.Sprint("m", i)))
	}
	start()
	for _, id := range ids {
		v := waitState(t, h, id, store.Sent)
		if v.Deliveries[0].Attempts != 1 {
			t.Errorf("%s: attempts %d, want 1:\n%s", id, v.Deliveries[0].Attempts, details(v))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The first delivery meets the outage and the rest of its batch is
	// put back untried; from then on one probe per backoff period.
	for i := 1; i < 6; i++ {
		if gap := f.at[i].Sub(f.at[i-1]); gap < h.RetryMin/2 {
			t.Errorf("call %d came %s after the one before, during the outage (backoff at least %s): messages tried one by one (%q)", i+1, gap, h.RetryMin/2, f.texts)
		}
	}
	if len(f.texts) != 6+5 {
		t.Errorf("%d calls, want 11 (6 probes, then 5 sends): %q", len(f.texts), f.texts)
	}
}

// A message that meets an outage goes behind the others: one message that
// only looks like an outage (an SMSC that is busy for one number) does not
// hold the queue.
func TestOutageProbesRotate(t *testing.T) {
	down := bridge.Outage(errors.New("+CMS ERROR: 512 (MM establishment failure)"))
	f := &fake{results: []error{down, down, down}}
	h, start := newHub(t, f)
	var ids []string
	for i := range 3 {
		ids = append(ids, submit(t, h, fmt.Sprint("m", i)))
	}
	start()
	for _, id := range ids {
		waitState(t, h, id, store.Sent)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.texts[:3], ","); got != "m0,m1,m2" {
		t.Errorf("probes during the outage: %s, want m0,m1,m2 (each behind the others)", got)
	}
}
