package hw

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/pdu"
)

// An indication that finds the session's queue full does not wait for
// room (the AT engine gives each its own goroutine: waiting, they grew
// without bound under a burst); it asks for a sweep, which reads it.
func TestStoredIndicationsNeverWait(t *testing.T) {
	m := &ATModem{log: slog.New(slog.DiscardHandler)}
	c := &conn{events: make(chan event, 64), sweepSoon: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			m.onStored(c, fmt.Sprintf(`+CMTI: "SM",%d`, i%30+1), i%2 == 1)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("onStored waits for room in the session's queue")
	}
	if len(c.events) != cap(c.events) || len(c.sweepSoon) != 1 {
		t.Fatalf("events %d of %d, sweep asked %d: want the queue full and one sweep asked", len(c.events), cap(c.events), len(c.sweepSoon))
	}
}

// A burst of stored messages while nothing reads the modem's messages:
// every one is handed up when reading resumes, and the goroutines
// do not grow with the burst.
func TestIndicationBurstLosesNothing(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	if err := r.sim.SetCapacity(30); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	const n = 300
	for i := range n {
		// Into the SIM while there is room, the rest waiting at the
		// network until slots are freed, as a network does.
		if err := r.sim.Inject(deliverHex(t, "+15555550111", fmt.Sprintf("burst %d", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	most := 0
	ctx := context.Background()
	for len(seen) < n {
		in := r.next()
		m, err := pdu.Decode(in.PDU)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Text]++
		if err := r.modem.Ack(ctx, in); err != nil {
			t.Fatal(err)
		}
		most = max(most, runtime.NumGoroutine()-base)
	}
	if most > 100 {
		t.Errorf("goroutines grew by %d during a burst of %d", most, n)
	}
}
