package sms_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
)

// A call on the real AT code becomes one inbound message, kind "call",
// routed to the app; the same call handed up again is recognised.
func TestMissedCallRoutedOnce(t *testing.T) {
	r := newRigWith(t, true, func(c *hw.Config) {
		c.Calls = hw.CallConfig{Hangup: true, HangupAfter: 2, HandUp: true}
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.conn.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Call("+15555550111", 6, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var got []store.Message
	deadline := time.Now().Add(15 * time.Second)
	for len(got) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no missed call routed")
		}
		time.Sleep(20 * time.Millisecond)
		got = r.app.all()
	}
	m := got[0]
	if m.Kind != store.KindCall || m.Peer != "+15555550111" || m.Text == nil || *m.Text != "missed call from +15555550111" ||
		m.FromAddr != "tel:+15555550111" || m.Modem != "m1" || !strings.Contains(m.Detail, "2 ring(s), hung up by Outpost") {
		t.Fatalf("message %+v", m)
	}
	if recs := r.sim.Calls(); len(recs) != 1 || !recs[0].HungUp || recs[0].Rings != 2 {
		t.Fatalf("network saw %+v", recs)
	}
	// Handed up again before its key is released: a duplicate.
	call := hw.Call{ID: "again", Number: "+15555550111", Rings: 1, At: time.Now()}
	in := hw.Inbound{Modem: "m1", Call: &call}
	if _, err := r.conn.HandleInbound(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := r.conn.HandleInbound(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	inbox, err := r.router.Inbox(context.Background(), 10)
	if err != nil || len(inbox) != 2 {
		t.Fatalf("inbox %d messages (%v), want the call and one copy of the call handed up twice", len(inbox), err)
	}
	// A withheld number.
	withheld := hw.Call{ID: "w", Rings: 3, At: time.Now()}
	if _, err := r.conn.HandleInbound(context.Background(), hw.Inbound{Modem: "m1", Call: &withheld}); err != nil {
		t.Fatal(err)
	}
	inbox, _ = r.router.Inbox(context.Background(), 10)
	if inbox[0].Peer != "withheld" || *inbox[0].Text != "missed call from a withheld number" || inbox[0].FromAddr != "" {
		t.Fatalf("withheld: %+v", inbox[0].Message)
	}
}
