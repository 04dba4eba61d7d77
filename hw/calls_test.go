package hw

import (
	"context"
	"testing"
	"time"
)

// nextCall waits for a call handed up, failing on anything else.
func (r *rig) nextCall() Call {
	r.t.Helper()
	in := r.next()
	if in.Call == nil {
		r.t.Fatalf("handed up %+v, want a call", in)
	}
	return *in.Call
}

// noMore fails if anything is handed up within d.
func (r *rig) noMore(d time.Duration) {
	r.t.Helper()
	select {
	case in := <-r.modem.Incoming():
		r.t.Fatalf("handed up %+v, want nothing more (call %+v)", in, in.Call)
	case <-time.After(d):
	}
}

func TestCallHungUpAfterRings(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Calls = CallConfig{Hangup: true, HangupAfter: 2, HandUp: true, EndAfter: time.Second}
	})
	r.waitState(StateReady)
	if err := r.sim.Call("+15555550111", 10, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c := r.nextCall()
	if c.Number != "+15555550111" || c.Rings != 2 || !c.HungUp || c.ID == "" {
		t.Fatalf("call %+v", c)
	}
	if err := r.modem.Ack(context.Background(), Inbound{Call: &c}); err != nil {
		t.Fatal(err)
	}
	recs := r.sim.Calls()
	if len(recs) != 1 || !recs[0].HungUp || recs[0].Rings != 2 {
		t.Fatalf("the network saw %+v, want one call hung up after 2 rings", recs)
	}
	r.noMore(1500 * time.Millisecond)
	st, _ := r.modem.Status(context.Background())
	if st.Calls != 1 || st.LastCall == "" {
		t.Fatalf("status calls %d, last %q", st.Calls, st.LastCall)
	}
}

// A call left to ring is handed up once, when the caller gives up (NO
// CARRIER), with its rings; a modem that refuses +CLIP still reports
// its calls, without the number.
func TestCallIgnoredAndWithoutCLIP(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Calls = CallConfig{HandUp: true, EndAfter: 5 * time.Second} })
	r.waitState(StateReady)
	if err := r.sim.Call("+15555550112", 3, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c := r.nextCall()
	if c.Number != "+15555550112" || c.Rings != 3 || c.HungUp {
		t.Fatalf("call %+v", c)
	}
	r.noMore(500 * time.Millisecond)

	r.sim.SetRefuseCLIP(true)
	r.mu.Lock()
	r.ends[len(r.ends)-1].Close() // reconnect: init asks for +CLIP again
	r.mu.Unlock()
	r.waitState(StateDisconnected)
	r.waitState(StateReady)
	if err := r.sim.Call("+15555550113", 2, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c = r.nextCall()
	if c.Number != "" || c.Rings != 2 {
		t.Fatalf("call without caller id %+v", c)
	}
}

// A call that goes on ringing across a reconnect is one call; a modem
// that says nothing when the caller gives up ends it after EndAfter.
func TestCallAcrossReconnectHandedUpOnce(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Calls = CallConfig{HandUp: true, EndAfter: 800 * time.Millisecond} })
	r.waitState(StateReady)
	if err := r.sim.Call("+15555550114", 8, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	r.mu.Lock()
	r.ends[len(r.ends)-1].Close()
	r.mu.Unlock()
	r.waitState(StateDisconnected)
	r.waitState(StateReady)
	c := r.nextCall()
	if c.Number != "+15555550114" || c.HungUp || c.Rings < 3 {
		t.Fatalf("call %+v", c)
	}
	r.noMore(1500 * time.Millisecond)
	if n := len(r.sim.Calls()); n != 1 {
		t.Fatalf("%d calls rung", n)
	}
}

// A call whose commit failed is handed up again by the next sweep.
func TestReleasedCallHandedUpAgain(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Calls = CallConfig{Hangup: true, HangupAfter: 1, HandUp: true}
		c.SweepInterval = 300 * time.Millisecond
	})
	r.waitState(StateReady)
	if err := r.sim.Call("+15555550115", 5, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c := r.nextCall()
	r.modem.Release(Inbound{Call: &c})
	again := r.nextCall()
	if again.ID != c.ID || again.Number != "+15555550115" || again.Rings != 1 {
		t.Fatalf("first %+v, again %+v", c, again)
	}
}

func TestParseCLIP(t *testing.T) {
	for line, want := range map[string]string{
		`+CLIP: "+254712345678",145,"",,"",0`: "+254712345678",
		`+CLIP: "254712345678",145`:           "+254712345678",
		`+CLIP: "0712345678",129,"",,"",0`:    "0712345678",
		`+CLIP: "",128,"",,"",1`:              "",
	} {
		if got := parseCLIP(line); got != want {
			t.Errorf("%s: %q, want %q", line, got, want)
		}
	}
}

// A second caller right after a hang-up (within EndAfter, while the late
// rings of the first are absorbed) is a call of its own, with its rings.
func TestNextCallerRightAfterHangup(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Calls = CallConfig{Hangup: true, HangupAfter: 1, HandUp: true, EndAfter: 3 * time.Second}
	})
	r.waitState(StateReady)
	if err := r.sim.Call("+15555550116", 5, 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	first := r.nextCall()
	if err := r.sim.Call("+15555550117", 5, 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	second := r.nextCall()
	if first.Number != "+15555550116" || first.Rings != 1 || !first.HungUp ||
		second.Number != "+15555550117" || second.Rings != 1 || !second.HungUp || second.ID == first.ID {
		t.Fatalf("first %+v, second %+v", first, second)
	}
	r.noMore(time.Second)
}
