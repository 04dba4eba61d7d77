package sms

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

// TestOperatorPausesAModem: a modem an operator paused is given no part:
// the other modem takes the messages; one forced on it waits queued,
// its attempt not counted, with the reason; with every modem paused
// nothing is tried at all. On resume what waited goes, through the
// modem it waited for. Pause and resume are audited with who asked.
func TestOperatorPausesAModem(t *testing.T) {
	c, fakes, _ := newRouting(t, nil, map[string]ModemOptions{"m1": {}, "m2": {}})
	r := c.router
	r.ModemIDs = []string{"m1", "m2"}
	r.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	ops := bridge.WithCaller(ctx, "cli", "user ops")
	if a, err := r.Pause(ops, "m1"); err != nil || a != (bridge.PauseAnswer{Name: "m1", Kind: "modem", Paused: true}) {
		t.Fatalf("pause m1: %+v %v", a, err)
	}
	if _, err := r.Pause(ops, "m9"); !errors.Is(err, bridge.ErrUnknownName) || !strings.Contains(err.Error(), "give a modem (m1, m2) or a connector (sms)") {
		t.Errorf("pause of an unknown name: %v", err)
	}
	var ids []string
	for i := range 3 {
		id, err := r.Submit(ctx, bridge.SendRequest{To: []string{fmt.Sprintf("+1555555010%d", i)}, Text: "any", Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	forced, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550109"}, Text: "only m1", Source: "test", Modem: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		waitView(t, r, id, func(v bridge.MessageView) bool { return v.State == store.Sent })
	}
	waitView(t, r, forced, func(v bridge.MessageView) bool {
		return v.State == store.Queued && strings.Contains(v.Deliveries[0].LastError, "m1: paused (outpost resume m1)")
	})
	if v, _ := r.Message(ctx, forced); fakes["m1"].count() != 0 || fakes["m2"].count() != 3 || v.Deliveries[0].Attempts != 0 {
		t.Errorf("m1 paused: m1 sent %d, m2 %d (want 0, 3); the forced one's attempts %d (want 0)", fakes["m1"].count(), fakes["m2"].count(), v.Deliveries[0].Attempts)
	}

	// Both paused: nothing is claimed, nothing tried.
	if _, err := r.Pause(ops, "m2"); err != nil {
		t.Fatal(err)
	}
	held, err := r.Submit(ctx, bridge.SendRequest{To: []string{"+15555550108"}, Text: "held", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // ample for a dispatcher that ignores the pause to send it
	if v, _ := r.Message(ctx, held); v.State != store.Queued || v.Deliveries[0].Attempts != 0 || fakes["m2"].count() != 3 {
		t.Errorf("every modem paused: %s, attempts %d, m2 sent %d: want it queued, untried", v.State, v.Deliveries[0].Attempts, fakes["m2"].count())
	}
	if got := r.PausedNames(); fmt.Sprint(got) != "[m1 m2]" {
		t.Errorf("paused: %v", got)
	}

	if a, err := r.Resume(ops, "m1"); err != nil || a != (bridge.PauseAnswer{Name: "m1", Kind: "modem", Paused: false}) {
		t.Fatalf("resume m1: %+v %v", a, err)
	}
	waitView(t, r, forced, func(v bridge.MessageView) bool { return v.State == store.Sent })
	waitView(t, r, held, func(v bridge.MessageView) bool { return v.State == store.Sent })
	if v, _ := r.Message(ctx, forced); fakes["m1"].count() != 2 || fakes["m2"].count() != 3 || v.Deliveries[0].Attempts != 1 {
		t.Errorf("after resume of m1: m1 sent %d (want 2), m2 %d (want 3), the forced one's attempts %d (want 1)", fakes["m1"].count(), fakes["m2"].count(), v.Deliveries[0].Attempts)
	}
	log, err := r.AuditLog(ctx, bridge.AuditQuery{Who: "user ops"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Op+" "+e.Target+" "+e.Channel+" "+e.Detail)
	}
	if s := strings.Join(got, "; "); !strings.Contains(s, "pause m1 cli modem") || !strings.Contains(s, "pause m2 cli modem") || !strings.Contains(s, "resume m1 cli modem") {
		t.Errorf("audit: %s", s)
	}
	cancel()
	<-done
}
