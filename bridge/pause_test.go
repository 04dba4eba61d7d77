package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestPausedConnectorKeepsItsQueue: a paused connector is given nothing:
// its deliveries stay queued with their attempts, across a restart (the
// pause is stored); on resume they go, in the order they were queued,
// each on its first attempt. The audit log says who paused and resumed.
func TestPausedConnectorKeepsItsQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	f := &fake{}
	// run starts a router on the store at path, as the daemon does.
	run := func() (*bridge.Router, func()) {
		st, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h := bridge.New(st, nil)
		h.Add(f)
		ctx, cancel := context.WithCancel(context.Background())
		if err := h.LoadPaused(ctx); err != nil { // as the daemon does
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		stop := func() { cancel(); <-done; st.Close() }
		t.Cleanup(func() {
			if ctx.Err() == nil {
				stop()
			}
		})
		return h, stop
	}
	h, stop := run()
	by := bridge.WithCaller(context.Background(), "http", "token:ops")
	if a, err := h.Pause(by, "sms"); err != nil || a != (bridge.PauseAnswer{Name: "sms", Kind: "connector", Paused: true}) {
		t.Fatalf("pause: %+v %v", a, err)
	}
	if _, err := h.Pause(by, "sms"); err != nil {
		t.Errorf("pausing again: %v", err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, submit(t, h, fmt.Sprint("m", i)))
	}
	time.Sleep(300 * time.Millisecond) // ample for a dispatcher that ignores the pause
	stop()
	if f.Calls() != 0 {
		t.Fatalf("%d delivered while paused", f.Calls())
	}

	h, _ = run()
	if !h.Paused("sms") || fmt.Sprint(h.PausedNames()) != "[sms]" {
		t.Fatalf("after a restart: paused %v", h.PausedNames())
	}
	time.Sleep(300 * time.Millisecond)
	for _, id := range ids {
		if v, _ := h.Message(context.Background(), id); v.State != store.Queued || v.Deliveries[0].Attempts != 0 {
			t.Errorf("%s after a restart, still paused: %s, %d attempts", id, v.State, v.Deliveries[0].Attempts)
		}
	}
	if f.Calls() != 0 {
		t.Fatalf("%d delivered while paused, after a restart", f.Calls())
	}
	if _, err := h.Resume(by, "nothing"); !errors.Is(err, bridge.ErrUnknownName) {
		t.Errorf("resume of an unknown name: %v", err)
	}
	if a, err := h.Resume(by, "sms"); err != nil || a != (bridge.PauseAnswer{Name: "sms", Kind: "connector", Paused: false}) {
		t.Fatalf("resume: %+v %v", a, err)
	}
	for _, id := range ids {
		if v := waitState(t, h, id, store.Sent); v.Deliveries[0].Attempts != 1 {
			t.Errorf("%s: attempts %d, want 1", id, v.Deliveries[0].Attempts)
		}
	}
	f.mu.Lock()
	texts := slices.Clone(f.texts)
	f.mu.Unlock()
	if fmt.Sprint(texts) != "[m0 m1 m2 m3 m4]" {
		t.Errorf("delivered in the order %v, want the order queued", texts)
	}
	log, err := h.AuditLog(context.Background(), bridge.AuditQuery{Who: "token:ops"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Op+" "+e.Target+" "+e.Channel)
	}
	// Pausing twice is one pause.
	if s := strings.Join(got, "; "); strings.Count(s, "pause sms http") != 1 || !strings.Contains(s, "resume sms http") {
		t.Errorf("audit: %s", s)
	}
}
