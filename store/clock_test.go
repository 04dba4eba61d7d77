package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/store/clock"
)

// fakeClock makes s read the time from a fake clock at t.
func fakeClock(s *Store, t time.Time) *clock.Fake {
	f := clock.NewFake(t)
	s.SetClock(f)
	return f
}

// boot is a Pi's clock before NTP: 1970 plus the uptime.
var boot = time.Date(1970, 1, 1, 0, 0, 42, 0, time.UTC)

// set is what NTP sets it to: a sane time.
var set = clock.Floor.Add(40 * 24 * time.Hour)

func update(t *testing.T, s *Store, f func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func enqueueHub(t *testing.T, s *Store, payloads ...string) {
	t.Helper()
	update(t, s, func(tx *Tx) error {
		for _, p := range payloads {
			if err := tx.EnqueueHub(&HubMessage{Topic: "t", Payload: []byte(p), QoS: 1}); err != nil {
				return err
			}
		}
		return nil
	})
}

func hubQueue(t *testing.T, s *Store) []HubMessage {
	t.Helper()
	var b []HubMessage
	if err := s.View(context.Background(), func(tx *Tx) (err error) { b, err = tx.HubBatch(0, 100); return }); err != nil {
		t.Fatal(err)
	}
	return b
}

func expireHub(t *testing.T, s *Store, maxAge time.Duration) int64 {
	t.Helper()
	var n int64
	update(t, s, func(tx *Tx) (err error) { n, err = tx.ExpireHub(tx.Now().Add(-maxAge)); return })
	return n
}

// TestHubAgeAcrossClockSet: messages queued in 1970 (the clock not yet
// set) are not dropped as decades old when NTP sets the clock; their age
// is the elapsed time since they were queued.
func TestHubAgeAcrossClockSet(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, boot)
	enqueueHub(t, s, "a", "b")
	clk.Advance(10 * time.Minute)
	enqueueHub(t, s, "c")
	clk.Advance(5 * time.Minute)
	if n := expireHub(t, s, time.Hour); n != 0 {
		t.Fatalf("%d expired before the clock was set", n)
	}
	clk.Set(set)
	if n := expireHub(t, s, time.Hour); n != 0 {
		t.Fatalf("%d messages queued 15 and 5 minutes ago expired as older than 1h when the clock was set", n)
	}
	q := hubQueue(t, s)
	if len(q) != 3 || !q[0].CreatedAt.Equal(set.Add(-15*time.Minute)) || !q[2].CreatedAt.Equal(set.Add(-5*time.Minute)) {
		t.Fatalf("queue after the clock was set: %+v (want a, b queued at %v, c at %v)", q, set.Add(-15*time.Minute), set.Add(-5*time.Minute))
	}
	clk.Advance(50 * time.Minute) // a, b: 65 minutes old; c: 55
	if n := expireHub(t, s, time.Hour); n != 2 {
		t.Fatalf("expired %d, want the 2 queued 65 minutes of elapsed time ago", n)
	}
	if q := hubQueue(t, s); len(q) != 1 || string(q[0].Payload) != "c" {
		t.Fatalf("queue %+v", q)
	}
	// The first jump is the fake clock taking over from the real one.
	if j := s.Jumps(); len(j) != 2 || j[1].By() != set.Sub(boot.Add(15*time.Minute)) || j[1].Rows != 3 {
		t.Fatalf("jumps %+v", j)
	}
}

// TestHubAgeAcrossInsaneJump: a clock that jumps while still not sane (a
// saved time restored after boot) moves what was queued along.
func TestHubAgeAcrossInsaneJump(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, boot)
	enqueueHub(t, s, "a")
	clk.Advance(time.Minute)
	clk.Set(clock.Floor.Add(-48 * time.Hour))
	if n := expireHub(t, s, time.Hour); n != 0 {
		t.Fatalf("%d expired after a jump of decades that took a minute", n)
	}
	if q := hubQueue(t, s); len(q) != 1 || !q[0].CreatedAt.Equal(clk.Now().Add(-time.Minute)) {
		t.Fatalf("queue %+v", q)
	}
}

// TestPartsAcrossClockSet: the parts of a long message received before
// the clock was set wait the reassembly timeout in elapsed time.
func TestPartsAcrossClockSet(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, boot)
	update(t, s, func(tx *Tx) error {
		_, err := tx.AddInboundPart(InboundPart{GroupKey: "m1|+1|8|7|2", Seq: 1, Total: 2, PDU: []byte{1}})
		return err
	})
	clk.Advance(time.Hour)
	stale := func() []string {
		t.Helper()
		var keys []string
		if err := s.View(context.Background(), func(tx *Tx) (err error) { keys, err = tx.StaleGroups(tx.Now().Add(-24 * time.Hour)); return }); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	clk.Set(set)
	// Read before any write made up for the jump: still not stale.
	if k := stale(); len(k) != 0 {
		t.Fatalf("stale right after the clock was set: %v", k)
	}
	update(t, s, func(tx *Tx) error { return nil })
	if k := stale(); len(k) != 0 {
		t.Fatalf("stale after the clock was set: %v", k)
	}
	clk.Advance(22*time.Hour + 59*time.Minute)
	if k := stale(); len(k) != 0 {
		t.Fatalf("stale after 23h59m: %v", k)
	}
	clk.Advance(2 * time.Minute)
	if k := stale(); len(k) != 1 {
		t.Fatalf("not stale after 24h01m of elapsed time: %v", k)
	}
}

// TestExpiresAcrossClockSet: a send that expires 30 minutes after it was
// given, given before the clock was set, expires 30 minutes of elapsed
// time later: not at once when the clock is set, not never.
func TestExpiresAcrossClockSet(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, boot)
	var d Delivery
	update(t, s, func(tx *Tx) error {
		m := &Message{Direction: Out, Peer: "+1", ExpiresAt: tx.Now().Add(30 * time.Minute)}
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		d = Delivery{MessageID: m.ID, Connector: "sms", Recipient: "+1", ExpiresAt: m.ExpiresAt}
		return tx.InsertDelivery(&d, "accepted")
	})
	expire := func() []Delivery {
		t.Helper()
		var ds []Delivery
		update(t, s, func(tx *Tx) (err error) { ds, err = tx.ExpireDue(); return })
		return ds
	}
	clk.Advance(10 * time.Minute)
	clk.Set(set)
	if ds := expire(); len(ds) != 0 {
		t.Fatalf("expired when the clock was set: %+v", ds)
	}
	var got Delivery
	s.View(context.Background(), func(tx *Tx) (err error) { got, err = tx.Delivery(d.ID); return })
	if want := set.Add(20 * time.Minute); !got.ExpiresAt.Equal(want) {
		t.Fatalf("expires at %v, want %v", got.ExpiresAt, want)
	}
	clk.Advance(19 * time.Minute)
	if ds := expire(); len(ds) != 0 {
		t.Fatalf("expired after 29 minutes: %+v", ds)
	}
	clk.Advance(2 * time.Minute)
	if ds := expire(); len(ds) != 1 || ds[0].State != Expired {
		t.Fatalf("not expired after 31 minutes: %+v", ds)
	}
}

// TestRetryAfterClockWentBack: a retry waits its backoff in elapsed time
// when the clock goes back meanwhile, not the backoff plus the step.
func TestRetryAfterClockWentBack(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, set)
	var d Delivery
	update(t, s, func(tx *Tx) error {
		m := &Message{Direction: Out, Peer: "+1"}
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		d = Delivery{MessageID: m.ID, Connector: "sms", Recipient: "+1"}
		if err := tx.InsertDelivery(&d, "accepted"); err != nil {
			return err
		}
		_, err := tx.SetDeliveryState(d.ID, Transition{State: Queued, NextAt: tx.Now().Add(3 * time.Second), LastError: "busy"})
		return err
	})
	claim := func() []Delivery {
		t.Helper()
		var ds []Delivery
		update(t, s, func(tx *Tx) (err error) { ds, err = tx.ClaimDue("sms", 10); return })
		return ds
	}
	clk.Set(set.Add(-time.Hour))
	clk.Advance(2 * time.Second)
	if ds := claim(); len(ds) != 0 {
		t.Fatalf("claimed before its backoff: %+v", ds)
	}
	clk.Advance(2 * time.Second)
	if ds := claim(); len(ds) != 1 {
		t.Fatal("not claimed 4 s into a 3 s backoff after the clock went back an hour")
	}
}

// TestRebaseAtOpen: times a stopped daemon recorded in 1970 are moved at
// start so that the newest is now; nothing expires for their age.
func TestRebaseAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outpost.db")
	old := clock.NewFake(boot)
	s, err := Open(ctx, path, Options{Clock: old})
	if err != nil {
		t.Fatal(err)
	}
	enqueueHub(t, s, "a")
	old.Advance(time.Hour)
	enqueueHub(t, s, "b")
	s.Close()

	now := clock.NewFake(set)
	if s, err = Open(ctx, path, Options{Clock: now}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := hubQueue(t, s)
	if len(q) != 2 || !q[0].CreatedAt.Equal(set.Add(-time.Hour)) || !q[1].CreatedAt.Equal(set) {
		t.Fatalf("queue %+v", q)
	}
	if n := expireHub(t, s, 2*time.Hour); n != 0 {
		t.Fatalf("%d expired", n)
	}
}

// TestRetryAfterRestartWithClockBehind: the daemon restarts with the
// clock an hour behind what it was (or back in 1970, never to be set):
// a retry due 3 s after it was scheduled is due 3 s after the restart.
func TestRetryAfterRestartWithClockBehind(t *testing.T) {
	for name, restart := range map[string]time.Time{"an hour behind": set.Add(-time.Hour), "1970": boot} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "outpost.db")
			s, err := Open(ctx, path, Options{Clock: clock.NewFake(set)})
			if err != nil {
				t.Fatal(err)
			}
			update(t, s, func(tx *Tx) error {
				m := &Message{Direction: Out, Peer: "+1"}
				if err := tx.InsertMessage(m); err != nil {
					return err
				}
				d := Delivery{MessageID: m.ID, Connector: "sms", Recipient: "+1"}
				if err := tx.InsertDelivery(&d, "accepted"); err != nil {
					return err
				}
				_, err := tx.SetDeliveryState(d.ID, Transition{State: Queued, NextAt: tx.Now().Add(3 * time.Second), LastError: "busy"})
				return err
			})
			s.Close()
			clk := clock.NewFake(restart)
			if s, err = Open(ctx, path, Options{Clock: clk}); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			claim := func() []Delivery {
				t.Helper()
				var ds []Delivery
				update(t, s, func(tx *Tx) (err error) { ds, err = tx.ClaimDue("sms", 10); return })
				return ds
			}
			clk.Advance(2 * time.Second)
			if ds := claim(); len(ds) != 0 {
				t.Fatalf("claimed before its backoff: %+v", ds)
			}
			clk.Advance(2 * time.Second)
			if ds := claim(); len(ds) != 1 {
				t.Fatal("not claimed 4 s into a 3 s backoff")
			}
		})
	}
}
