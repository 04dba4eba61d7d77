package sms

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// fakeClock is a Clock the test moves.
type fakeClock struct {
	mu   sync.Mutex
	wall time.Time
	el   time.Duration
}

func (f *fakeClock) Now() time.Time                     { f.mu.Lock(); defer f.mu.Unlock(); return f.wall }
func (f *fakeClock) Elapsed() time.Duration             { f.mu.Lock(); defer f.mu.Unlock(); return f.el }
func (f *fakeClock) Real(d time.Duration) time.Duration { return d }
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall, f.el = f.wall.Add(d), f.el+d
}

// fakeModem answers every send with err, or accepts it.
type fakeModem struct {
	mu   sync.Mutex
	err  error
	sent int
	// failAfter, when not 0, makes err the answer once that many are sent.
	failAfter int
	in        chan hw.Inbound
	done      chan struct{}
}

func newFake() *fakeModem { return &fakeModem{in: make(chan hw.Inbound), done: make(chan struct{})} }

func (f *fakeModem) SendPDU(context.Context, []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil && f.sent >= f.failAfter {
		return 0, f.err
	}
	f.sent++
	return f.sent, nil
}
func (f *fakeModem) Incoming() <-chan hw.Inbound           { return f.in }
func (f *fakeModem) Ack(context.Context, hw.Inbound) error { return nil }
func (f *fakeModem) Release(hw.Inbound)                    {}
func (f *fakeModem) Done() <-chan struct{}                 { return f.done }
func (f *fakeModem) Close() error                          { return nil }
func (f *fakeModem) Status(context.Context) (hw.Status, error) {
	return hw.Status{State: hw.StateReady, Registration: "home"}, nil
}
func (f *fakeModem) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.sent }
func (f *fakeModem) fail(err error, after int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.failAfter = err, after
}

func newRouting(t *testing.T, s *store.Store, opts map[string]ModemOptions) (*Connector, map[string]*fakeModem, *fakeClock) {
	t.Helper()
	if s == nil {
		var err error
		if s, err = store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
	}
	fakes := map[string]*fakeModem{}
	modems := map[string]hw.Modem{}
	for id := range opts {
		fakes[id] = newFake()
		modems[id] = fakes[id]
	}
	c := New(bridge.New(s, nil), modems)
	clk := &fakeClock{wall: time.Date(2026, 12, 2, 23, 0, 0, 0, time.Local), el: time.Hour}
	c.Modems, c.Clock = opts, clk
	return c, fakes, clk
}

// take acquires and releases a place as a part sent (or failed with err).
func take(t *testing.T, c *Connector, p pick, err error) string {
	t.Helper()
	id, _, aerr := c.acquire(context.Background(), p)
	if aerr != nil {
		t.Fatalf("acquire %+v: %v", p, aerr)
	}
	c.release(id, err)
	return id
}

func TestRateWindowAndDailyLimit(t *testing.T) {
	c, _, clk := newRouting(t, nil, map[string]ModemOptions{"m1": {Rate: 6, Per: time.Minute, DailyLimit: 8}})
	for range 6 {
		take(t, c, pick{to: "+1"}, nil)
		clk.advance(time.Second)
	}
	// Sent at 0–5s, now 6s: the first leaves the window at 60s.
	_, _, err := c.acquire(context.Background(), pick{to: "+1"})
	if err == nil || !strings.Contains(err.Error(), "m1: rate 6/min reached, next in 54s") || bridge.IsOutage(err) {
		t.Fatalf("the 7th within a minute: %v; want it to wait 54s for the rate, not an outage", err)
	}
	clk.advance(53 * time.Second)
	if _, _, err := c.acquire(context.Background(), pick{to: "+1"}); err == nil {
		t.Fatalf("at 59s: a 7th place in the window")
	}
	clk.advance(time.Second)
	take(t, c, pick{to: "+1"}, nil)
	// In flight counts: 7 sent and one taken, not released, fill the
	// day's 8.
	clk.advance(2 * time.Minute)
	if _, _, err := c.acquire(context.Background(), pick{to: "+1"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.acquire(context.Background(), pick{to: "+1"})
	if err == nil || !strings.Contains(err.Error(), "daily limit of 8 parts reached (sent 7 today), next in 57m") {
		t.Fatalf("over the daily limit: %v", err)
	}
	clk.advance(time.Hour)
	// The day by the box's clock: it is past midnight now.
	if st := c.RoutingStatus().(map[string]RouteState)["m1"]; st.Today != 0 || st.InFlight != 1 {
		t.Errorf("after midnight: %+v, want 0 today and the one in flight", st)
	}
}

func TestChoiceAndRest(t *testing.T) {
	c, _, clk := newRouting(t, nil, map[string]ModemOptions{
		"m1": {Prefixes: []string{"+2547"}}, "m2": {Prefixes: []string{"+25471"}}, "m3": {}, "m4": {ReceiveOnly: true},
	})
	ctx := context.Background()
	for _, tc := range []struct {
		p    pick
		want string
	}{
		{pick{to: "+254712000000"}, "m2"},
		{pick{to: "+254700000000"}, "m1"},
		{pick{to: "+254712000000", prefer: "m3"}, "m3"},
		{pick{to: "+254712000000", forced: "m1"}, "m1"},
		{pick{to: "+254712000000", exclude: map[string]bool{"m2": true}}, "m1"},
	} {
		if got := take(t, c, tc.p, nil); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.p, got, tc.want)
		}
	}
	// Least loaded for a number no prefix matches: m1 sent 3, m2 and m3
	// 1 each; one in flight on m2.
	c.acquire(ctx, pick{forced: "m2"})
	if got := take(t, c, pick{to: "+15555550100"}, nil); got != "m3" {
		t.Errorf("least loaded: %s, want m3", got)
	}
	if _, _, err := c.acquire(ctx, pick{forced: "m4"}); err == nil || !strings.Contains(err.Error(), "m4: receive-only") {
		t.Errorf("forced to a receive-only modem: %v", err)
	}
	// m3 fails three times in a row (no answer): rested a minute.
	outage := fmt.Errorf("AT+CMGS: no answer: %w", hw.ErrNotReady)
	for range 3 {
		take(t, c, pick{forced: "m3"}, outage)
	}
	st := c.RoutingStatus().(map[string]RouteState)["m3"]
	if st.RestedFor != "1m0s" || st.Rests != 1 || !strings.Contains(st.LastError, "no answer") {
		t.Errorf("status of the rested modem: %+v", st)
	}
	for range 4 {
		if got := take(t, c, pick{to: "+15555550100"}, nil); got == "m3" {
			t.Errorf("a rested modem was given a part while others could take it")
		}
	}
	// When it is the only one that may, it is tried again.
	if got := take(t, c, pick{to: "+15555550100", exclude: map[string]bool{"m1": true, "m2": true}}, outage); got != "m3" {
		t.Errorf("the last resort: %s", got)
	}
	// A bad number is the message's fault: it does not count.
	take(t, c, pick{forced: "m1"}, &hw.CMSError{Code: 21})
	if c.RoutingStatus().(map[string]RouteState)["m1"].Failures != 0 {
		t.Errorf("a permanent error counted toward a rest")
	}
	// After its rest, three more failures rest it twice as long.
	clk.advance(time.Minute)
	for range 2 {
		take(t, c, pick{forced: "m3"}, outage)
	}
	if st := c.RoutingStatus().(map[string]RouteState)["m3"]; st.RestedFor != "2m0s" {
		t.Errorf("second rest: %+v, want 2m", st)
	}
}

// TestDeliverFailsOver runs the router's dispatcher on the connector: a
// part refused by m1 with an outage-class error goes out through m2, the
// history says so; a message forced to m1 waits instead (uncounted); the
// parts sent count toward the daily limit of a connector started again
// on the same store.
func TestDeliverFailsOver(t *testing.T) {
	opts := map[string]ModemOptions{"m1": {}, "m2": {}}
	c, fakes, _ := newRouting(t, nil, opts)
	fakes["m1"].err = fmt.Errorf("AT+CMGS: %w", &hw.CMSError{Code: 512})
	r := c.router
	r.ModemIDs = []string{"m1", "m2"}
	r.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	id, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: "over", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	forced, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550101"}, Text: "only m1", Source: "test", Modem: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550101"}, Text: "x", Source: "test", Modem: "m7"}); !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("an unknown modem: %v", err)
	}
	waitView(t, r, id, func(v bridge.MessageView) bool { return v.State == store.Sent })
	v, _ := r.Message(ctx, id)
	history := fmt.Sprint(v.Events)
	if !strings.Contains(history, "part 1/1 not sent through m1: AT+CMGS: +CMS ERROR: 512; trying another modem") ||
		!strings.Contains(history, "accepted by m2") || !strings.Contains(history, "moved after m1 failed") {
		t.Errorf("history of the moved part: %s", history)
	}
	waitView(t, r, forced, func(v bridge.MessageView) bool {
		return v.State == store.Queued && strings.Contains(v.Deliveries[0].LastError, "512")
	})
	v, _ = r.Message(ctx, forced)
	if v.Modem != "m1" || v.Deliveries[0].Attempts != 0 || fakes["m2"].count() != 1 {
		t.Errorf("forced to a failing m1: modem %q, attempts %d, m2 sent %d: want it waiting for m1, uncounted", v.Modem, v.Deliveries[0].Attempts, fakes["m2"].count())
	}
	cancel()
	<-done

	// Started again with daily_limit = 1 on m2: today's part counts.
	c2, _, _ := newRouting(t, r.Store, map[string]ModemOptions{"m2": {DailyLimit: 1}})
	c2.Clock = nil // the box's day, as the store counted it
	c2.lanesInit()
	c2.seedToday(context.Background())
	if _, _, err := c2.acquire(context.Background(), pick{to: "+1"}); err == nil || !strings.Contains(err.Error(), "daily limit of 1 parts reached (sent 1 today)") {
		t.Errorf("after a restart: %v", err)
	}
	c3, _, _ := newRouting(t, r.Store, map[string]ModemOptions{"m2": {Rate: 1, Per: time.Hour}})
	c3.Clock = nil
	c3.lanesInit()
	c3.seedToday(context.Background())
	if _, _, err := c3.acquire(context.Background(), pick{to: "+1"}); err == nil || !strings.Contains(err.Error(), "rate 1/h reached, next in 59m") {
		t.Errorf("rate after a restart: %v", err)
	}
}

func waitView(t *testing.T, r *bridge.Router, id string, cond func(bridge.MessageView) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := r.Message(context.Background(), id)
		if err == nil && cond(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %s; history %v", id, v.State, v.Events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPartsStayOnOneModem: a long message whose second part fails on
// the modem that took its first waits for that modem (uncounted, the
// other modem free) instead of mixing sender numbers; a message forced
// to a modem no longer configured fails with why.
func TestPartsStayOnOneModem(t *testing.T) {
	c, fakes, _ := newRouting(t, nil, map[string]ModemOptions{"m1": {}, "m2": {}})
	fakes["m1"].fail(fmt.Errorf("AT+CMGS: %w", &hw.CMSError{Code: 512}), 1)
	r := c.router
	r.ModemIDs = []string{"m1", "m2", "m3"}
	r.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	id, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: strings.Repeat("long ", 50), Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, r, id, func(v bridge.MessageView) bool {
		return v.Deliveries[0].State == store.Queued && strings.Contains(v.Deliveries[0].LastError, "part 2/2") && strings.Contains(v.Deliveries[0].LastError, "512")
	})
	if v, _ := r.Message(ctx, id); v.Deliveries[0].Attempts != 0 || fakes["m2"].count() != 0 {
		t.Errorf("attempts %d, m2 sent %d: want the second part waiting for m1, uncounted", v.Deliveries[0].Attempts, fakes["m2"].count())
	}
	fakes["m1"].fail(nil, 0)
	waitView(t, r, id, func(v bridge.MessageView) bool { return v.State == store.Sent })
	if fakes["m1"].count() != 2 || fakes["m2"].count() != 0 {
		t.Errorf("m1 sent %d, m2 %d: want both parts through m1", fakes["m1"].count(), fakes["m2"].count())
	}
	gone, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: "x", Source: "test", Modem: "m3"})
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, r, gone, func(v bridge.MessageView) bool {
		return v.State == store.Failed && strings.Contains(v.Deliveries[0].LastError, "modem m3, which the message must go out through, is no longer configured")
	})
	cancel()
	<-done
}

// recClock records what real waits are asked of it, and waits none.
type recClock struct {
	fakeClock
	asked []time.Duration
}

func (r *recClock) Real(d time.Duration) time.Duration { r.asked = append(r.asked, d); return 0 }

func TestJitter(t *testing.T) {
	c, _, _ := newRouting(t, nil, map[string]ModemOptions{"m1": {Jitter: 2 * time.Second}, "m2": {}})
	clk := &recClock{}
	c.Clock = clk
	c.lanesInit()
	c.jitter(context.Background(), "m2")
	if len(clk.asked) != 0 {
		t.Fatalf("a modem without jitter waited %v", clk.asked)
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		c.jitter(context.Background(), "m1")
	}
	for _, d := range clk.asked {
		if d < 0 || d >= 2*time.Second {
			t.Errorf("jitter %s out of [0, 2s)", d)
		}
		seen[d] = true
	}
	if len(clk.asked) != 20 || len(seen) < 10 {
		t.Errorf("20 jitters: %v", clk.asked)
	}
}

// TestForcedModemMadeReceiveOnly: a message forced to a modem, or whose
// first parts went through one, that is receive-only after a restart
// (send = false) does not wait forever for it: the forced one fails with
// why, the other finishes on another modem.
func TestForcedModemMadeReceiveOnly(t *testing.T) {
	c, fakes, _ := newRouting(t, nil, map[string]ModemOptions{"m1": {}, "m2": {}})
	fakes["m1"].fail(fmt.Errorf("AT+CMGS: %w", &hw.CMSError{Code: 512}), 1)
	r := c.router
	r.ModemIDs = []string{"m1", "m2"}
	r.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	long, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: strings.Repeat("long ", 50), Source: "test", Modem: ""})
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, r, long, func(v bridge.MessageView) bool {
		return v.Deliveries[0].State == store.Queued && strings.Contains(v.Deliveries[0].LastError, "part 2/2")
	})
	forced, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550101"}, Text: "only m1", Source: "test", Modem: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, r, forced, func(v bridge.MessageView) bool { return strings.Contains(v.Deliveries[0].LastError, "512") })
	cancel()
	<-done

	c2, fakes2, _ := newRouting(t, r.Store, map[string]ModemOptions{"m1": {ReceiveOnly: true}, "m2": {}})
	r2 := c2.router
	r2.ModemIDs, r2.ReceiveOnly = []string{"m1", "m2"}, map[string]bool{"m1": true}
	r2.Add(c2)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = make(chan error)
	go func() { done <- r2.Run(ctx) }()
	waitView(t, r2, forced, func(v bridge.MessageView) bool {
		return v.State == store.Failed && strings.Contains(v.Deliveries[0].LastError, "m1, which the message must go out through, is receive-only")
	})
	waitView(t, r2, long, func(v bridge.MessageView) bool { return v.State == store.Sent })
	if fakes2["m2"].count() != 1 {
		t.Errorf("m2 sent %d parts: want the long message's second", fakes2["m2"].count())
	}
	cancel()
	<-done
}

// TestDailyLimitClockSetBack: the box's clock set back a day (or moved
// forward and corrected) does not give daily_limit a second day's parts:
// the count starts again at a later date, or once a whole day has passed
// by the monotonic clock.
func TestDailyLimitClockSetBack(t *testing.T) {
	c, _, clk := newRouting(t, nil, map[string]ModemOptions{"m1": {DailyLimit: 2}})
	ctx := context.Background()
	take(t, c, pick{to: "+1"}, nil)
	take(t, c, pick{to: "+1"}, nil)
	clk.mu.Lock()
	clk.wall = clk.wall.Add(-24 * time.Hour)
	clk.mu.Unlock()
	_, _, err := c.acquire(ctx, pick{to: "+1"})
	if err == nil || !strings.Contains(err.Error(), "daily limit of 2 parts reached (sent 2 today)") {
		t.Fatalf("after the clock went back a day: %v; want the limit still reached", err)
	}
	if !errors.Is(err, errLimited) {
		t.Errorf("%v: want the message waiting for the limit, uncounted", err)
	}
	// A day later by the monotonic clock the count starts again,
	// whatever the date says.
	clk.advance(24 * time.Hour)
	take(t, c, pick{to: "+1"}, nil)

	// Moved forward a day, two parts, then corrected: still two today.
	clk.advance(time.Hour)
	clk.mu.Lock()
	clk.wall = clk.wall.Add(48 * time.Hour)
	clk.mu.Unlock()
	take(t, c, pick{to: "+1"}, nil)
	take(t, c, pick{to: "+1"}, nil)
	clk.mu.Lock()
	clk.wall = clk.wall.Add(-48 * time.Hour)
	clk.mu.Unlock()
	if _, _, err := c.acquire(ctx, pick{to: "+1"}); err == nil {
		t.Errorf("after the clock was corrected back: a third part today")
	}
}

// TestForcedToPausedModemWaitsLonger: a message forced to a modem paused
// for its balance is looked at less often the longer the pause lasts,
// as for a modem that is down: not every 5 s for hours (two history
// lines each time).
func TestForcedToPausedModemWaitsLonger(t *testing.T) {
	c, _, _ := newRouting(t, nil, map[string]ModemOptions{"m1": {}, "m2": {}})
	clk := &recClock{fakeClock: fakeClock{wall: time.Date(2026, 12, 2, 12, 0, 0, 0, time.Local), el: time.Hour}}
	c.Clock = clk
	c.setPaused("m1", "balance 1.00 is below low_balance 50")
	ctx := context.Background()
	for range 3 {
		if _, _, err := c.acquire(ctx, pick{to: "+1", forced: "m1"}); err == nil || !strings.Contains(err.Error(), "m1: paused: balance 1.00") {
			t.Fatalf("forced to a paused modem: %v", err)
		}
		clk.advance(time.Hour)
	}
	if n := len(clk.asked); n == 0 || clk.asked[n-1] < time.Minute {
		t.Errorf("waits %v while m1 stays paused for hours: want them growing to minutes", clk.asked)
	}
}

// fakeBox is the store's fake clock as the connector's.
type fakeBox struct{ *clock.Fake }

func (fakeBox) Real(d time.Duration) time.Duration { return d }

// TestDailyLimitAcrossClockSet: a box without a real-time clock boots in
// 1970 and sends; when NTP sets the clock, the stored times move and the
// parts sent so far count for the day the clock now says, instead of
// being forgotten with 1970's day (a second day's parts in one).
func TestDailyLimitAcrossClockSet(t *testing.T) {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := clock.NewFake(time.Date(1970, 1, 1, 0, 0, 42, 0, time.UTC))
	s.SetClock(f)
	c, fakes, _ := newRouting(t, s, map[string]ModemOptions{"m1": {DailyLimit: 3}})
	c.Clock = fakeBox{f}
	r := c.router
	r.ModemIDs = []string{"m1"}
	r.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 2 {
		id, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: fmt.Sprint("before NTP ", i), Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		waitView(t, r, id, func(v bridge.MessageView) bool { return v.State == store.Sent })
	}
	f.Advance(time.Minute)
	f.Set(time.Date(2026, 12, 2, 12, 0, 0, 0, time.Local))
	var ids []string
	for i := range 3 {
		id, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550100"}, Text: fmt.Sprint("after NTP ", i), Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	waitView(t, r, ids[0], func(v bridge.MessageView) bool { return v.State == store.Sent })
	time.Sleep(500 * time.Millisecond)
	if n := fakes["m1"].count(); n != 3 {
		t.Errorf("m1 sent %d parts today with daily_limit = 3", n)
	}
}
