package sms_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
)

// The history samples on a change of state at once and the signal every
// period, writes in batches (none before the first write is due, all at
// the end), and reports the trend and the changes.
func TestModemHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &sms.History{Store: st, Every: 100 * time.Millisecond}
	stored := func() int {
		var n int
		st.View(context.Background(), func(tx *store.Tx) error {
			ss, err := tx.ModemSamples("m1", time.Time{})
			n = len(ss)
			return err
		})
		return n
	}
	h.Observe("m1", hw.Status{State: hw.StateConnecting, Signal: 99})
	h.Observe("m1", hw.Status{State: hw.StateReady, Signal: 10, Registration: "home", Operator: "Op"})
	h.Observe("m1", hw.Status{State: hw.StateReady, Signal: 20, Registration: "home", Operator: "Op"}) // signal alone: no sample
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	ss, err := h.Samples(context.Background(), "m1", time.Time{})
	if err != nil || len(ss) != 2 || stored() != 0 {
		t.Fatalf("before the first write: %d samples (%v), %d stored", len(ss), err, stored())
	}
	time.Sleep(650 * time.Millisecond) // several periods: signal samples, a write or two
	h.Observe("m1", hw.Status{State: hw.StateDisconnected, Signal: 99, Error: "gone"})
	cancel()
	<-done
	n := stored()
	if n < 4 {
		t.Errorf("%d samples stored, want the 3 changes and at least one periodic", n)
	}
	r, err := h.Report(context.Background(), []string{"m1", "m2"}, map[string]string{"m1": "+15555550123"},
		map[string]any{"m1": hw.Status{State: hw.StateDisconnected, Signal: 99, Error: "gone", Resets: 2, LastReset: "AT+CFUN=1,1: sent"}})
	if err != nil || len(r) != 2 {
		t.Fatalf("report: %v %+v", err, r)
	}
	m := r[0]
	if m.Trend.Min != 10 || m.Trend.Max != 20 || m.Trend.Samples < 2 || !strings.HasSuffix(m.Trend.Spark, "▅") || !strings.HasPrefix(m.Trend.Spark, "···") ||
		m.LastError != "gone" || m.Resets != 2 || m.Number != "+15555550123" {
		t.Errorf("report: %+v", m)
	}
	var states []string
	for _, c := range m.Changes {
		states = append(states, c.State)
	}
	if strings.Join(states, ",") != "connecting,ready,disconnected" {
		t.Errorf("changes %v", states)
	}
	if r[1].ID != "m2" || r[1].State != hw.StateConnecting || r[1].Trend.Samples != 0 {
		t.Errorf("a modem with no status yet: %+v", r[1])
	}
	// Older than a week: pruned.
	err = st.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.AddModemSamples([]store.ModemSample{{Modem: "m1", At: tx.Now().Add(-8 * 24 * time.Hour), State: "ready", Signal: 5}}); err != nil {
			return err
		}
		k, err := tx.PruneModemSamples(tx.Now().Add(-7 * 24 * time.Hour))
		if k != 1 {
			t.Errorf("pruned %d, want 1", k)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
