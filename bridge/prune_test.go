package bridge_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// pruneStore is a store whose clock reads now, with n finished messages
// and n audit entries of 400 days before it.
func pruneStore(t *testing.T, n int) (*store.Store, *clock.Fake) {
	t.Helper()
	now := clock.Floor.Add(500 * 24 * time.Hour)
	clk := clock.NewFake(now.Add(-400 * 24 * time.Hour))
	s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.Update(t.Context(), func(tx *store.Tx) error {
		for range n {
			text := "old"
			m := &store.Message{Direction: store.Out, Peer: "+15555550100", Text: &text, Source: "cli", Channel: "cli", Kind: store.KindText}
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
			d := &store.Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer, State: store.Delivered}
			if err := tx.InsertDelivery(d, ""); err != nil {
				return err
			}
			if err := tx.AppendAudit(&store.AuditEntry{Who: "old", Channel: "cli", Op: "send", Target: m.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(now)
	return s, clk
}

// TestPruneAuditKeepsWhatWaitsForHub: retention.audit prunes the old
// audit entries, but with a hub link none from the oldest whose copy
// still waits in the hub queue on; status counts them.
func TestPruneAuditKeepsWhatWaitsForHub(t *testing.T) {
	const topic = "outpost/gw1/audit"
	s, _ := pruneStore(t, 10)
	var all []store.AuditEntry
	s.View(t.Context(), func(tx *store.Tx) (err error) { all, err = tx.AuditLog(time.Time{}, "", 0); return })
	// The copy of the 7th still waits for the hub.
	b, _ := json.Marshal(all[6])
	if err := s.Update(t.Context(), func(tx *store.Tx) error {
		return tx.EnqueueHub(&store.HubMessage{Topic: topic, Payload: b, QoS: 1})
	}); err != nil {
		t.Fatal(err)
	}
	p := &bridge.Pruner{Store: s, Audit: 365 * 24 * time.Hour, AuditHubTopic: topic, Pause: time.Millisecond}
	if _, _, err := p.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	var left []store.AuditEntry
	s.View(t.Context(), func(tx *store.Tx) (err error) { left, err = tx.AuditLog(time.Time{}, "", 0); return })
	if st := p.Stats(); st.AuditGone != 6 || st.AuditFor != "8760h0m0s" || len(left) != 4 || left[0].ID != all[6].ID {
		t.Errorf("pruned %d (%+v), left %d from %d; want 6 pruned, 4 left from %d", st.AuditGone, st, len(left), left[0].ID, all[6].ID)
	}
	// Without a hub link, every old entry goes.
	p = &bridge.Pruner{Store: s, Audit: 365 * 24 * time.Hour, Pause: time.Millisecond}
	if _, _, err := p.Once(context.Background()); err != nil || p.Stats().AuditGone != 4 {
		t.Errorf("without a hub: pruned %d, %v", p.Stats().AuditGone, err)
	}
}
