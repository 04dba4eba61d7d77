package bridge_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// skewed is the system clock with a wall time the test sets (a clock
// that NTP steps): elapsed time is the real monotonic time.
type skewed struct{ off atomic.Int64 }

func (s *skewed) Now() time.Time         { return time.Now().Add(time.Duration(s.off.Load())) }
func (s *skewed) Elapsed() time.Duration { return clock.Elapsed() }
func (s *skewed) set(t time.Time)        { s.off.Store(int64(time.Until(t))) }
func (s *skewed) step(d time.Duration)   { s.off.Add(int64(d)) }
func useSkewed(h *bridge.Router) *skewed { s := &skewed{}; h.Store.SetClock(s); return s }

// TestRetryAfterClockWentBack: the clock goes back an hour while a
// delivery waits its 1 s backoff; it is retried a second later, not an
// hour later.
func TestRetryAfterClockWentBack(t *testing.T) {
	f := &fake{results: []error{errors.New("modem busy")}}
	h, start := newHub(t, f)
	h.RetryMin, h.RetryMax = time.Second, time.Second
	clk := useSkewed(h)
	retrying := make(chan struct{}, 1)
	h.OnStatus(func(c bridge.StatusChange) {
		if c.State == store.Queued && strings.Contains(c.Detail, "retry in") {
			retrying <- struct{}{}
		}
	})
	start()
	id := submit(t, h, "retried")
	select {
	case <-retrying: // failed once, waiting to retry
	case <-time.After(10 * time.Second):
		t.Fatal("no retry scheduled")
	}
	clk.step(-time.Hour)
	waitState(t, h, id, store.Sent)
	f.mu.Lock()
	defer f.mu.Unlock()
	if gap := f.at[1].Sub(f.at[0]); gap > 5*time.Second {
		t.Errorf("retried %v after the failure, with a 1 s backoff", gap)
	}
}

// TestExpiresGivenBeforeClockSet: a send that expires 2 s after it was
// given, given while the clock read 1970, expires 2 s of elapsed time
// later when NTP sets the clock meanwhile: not at once, not never.
func TestExpiresGivenBeforeClockSet(t *testing.T) {
	f := &fake{ready: make(chan struct{})} // the modem never comes up
	h, start := newHub(t, waiting{f})
	clk := useSkewed(h)
	clk.set(time.Date(1970, 1, 1, 0, 1, 0, 0, time.UTC))
	start()
	given := time.Now()
	id := submitReq(t, h, bridge.SendRequest{Text: "soon or never", Expires: h.Store.Now().Add(2 * time.Second)})
	clk.set(clock.Floor.Add(24 * time.Hour))
	set := time.Now()
	v := waitState(t, h, id, store.Expired)
	if elapsed := time.Since(given); elapsed < 2*time.Second {
		t.Fatalf("expired %v after it was given (the clock was set %v after), want 2 s:\n%s", elapsed, set.Sub(given), details(v))
	}
	if !v.ExpiresAt.After(clock.Floor) {
		t.Errorf("expires_at %v: not moved with the clock", v.ExpiresAt)
	}
}
