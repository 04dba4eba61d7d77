package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAuditAppendOnly: the audit log takes entries and lists them by time
// and who; an UPDATE or DELETE on it is refused by the database itself.
func TestAuditAppendOnly(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	err := s.Update(ctx, func(tx *Tx) error {
		for _, e := range []AuditEntry{{Who: "alice", Channel: "cli", Op: "send", Target: "m1"}, {Who: "mqtt:bob", Channel: "mqtt", Op: "ban", Target: "tel:+15555550111"}} {
			if err := tx.AppendAudit(&e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all, bob, later []AuditEntry
	_ = s.View(ctx, func(tx *Tx) (err error) {
		if all, err = tx.AuditLog(time.Time{}, "", 0); err != nil {
			return err
		}
		if bob, err = tx.AuditLog(time.Time{}, "BOB", 0); err != nil {
			return err
		}
		later, err = tx.AuditLog(s.Now().Add(time.Hour), "", 0)
		return err
	})
	if len(all) != 2 || all[0].Op != "send" || all[1].Who != "mqtt:bob" || all[0].At.IsZero() {
		t.Fatalf("all: %+v", all)
	}
	if len(bob) != 1 || bob[0].Op != "ban" || len(later) != 0 {
		t.Fatalf("bob %+v, later %+v", bob, later)
	}
	for _, q := range []string{`UPDATE audit SET who = 'mallory'`, `DELETE FROM audit`} {
		err := s.Update(ctx, func(tx *Tx) error { _, err := tx.exec(q); return err })
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestBans: a ban is kept with who and why, once; unban lifts it.
func TestBans(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var first, second, lifted, again bool
	err := s.Update(ctx, func(tx *Tx) (err error) {
		if first, err = tx.SetBan(Ban{Addr: "tel:+15555550111", By: "alice", Channel: "cli", Reason: "spam"}); err != nil {
			return err
		}
		second, err = tx.SetBan(Ban{Addr: "tel:+15555550111", By: "bob"})
		return err
	})
	if err != nil || !first || second {
		t.Fatal(err, first, second)
	}
	_ = s.View(ctx, func(tx *Tx) error {
		b, ok, err := tx.GetBan("tel:+15555550111")
		if err != nil || !ok || b.By != "alice" || b.Reason != "spam" {
			t.Fatalf("%+v %v %v", b, ok, err)
		}
		return nil
	})
	err = s.Update(ctx, func(tx *Tx) (err error) {
		if lifted, err = tx.ClearBan("tel:+15555550111"); err != nil {
			return err
		}
		again, err = tx.ClearBan("tel:+15555550111")
		return err
	})
	if err != nil || !lifted || again {
		t.Fatal(err, lifted, again)
	}
}

// TestPruneAudit: retention.audit deletes the entries older than the age,
// oldest first, but none whose copy still waits for the hub (queued or set
// aside) nor any after it; the database still refuses every other delete
// (an entry at or above the horizon) and a horizon moved back. A clock in
// 1970 prunes nothing.
func TestPruneAudit(t *testing.T) {
	s := openTest(t)
	clk := fakeClock(s, set)
	const topic = "outpost/gw1/audit"
	const year = 365 * 24 * time.Hour
	var ids []int64
	add := func(n int, queued bool) {
		update(t, s, func(tx *Tx) error {
			for range n {
				e := AuditEntry{Who: "alice", Channel: "cli", Op: "send"}
				if err := tx.AppendAudit(&e); err != nil {
					return err
				}
				ids = append(ids, e.ID)
				if queued {
					b, _ := json.Marshal(e)
					if err := tx.EnqueueHub(&HubMessage{Topic: topic, Payload: b, QoS: 1}); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	add(2, false) // 0, 1: forwarded (no copy waits)
	add(1, true)  // 2: its copy waits for the hub
	add(1, false) // 3
	clk.Advance(400 * 24 * time.Hour)
	add(1, false) // 4: recent
	waitingFrom := func() (from int64) {
		if err := s.View(t.Context(), func(tx *Tx) (err error) { from, err = tx.AuditWaitingFrom(topic); return }); err != nil {
			t.Fatal(err)
		}
		return from
	}
	prune := func(keepFrom int64) (n int64) {
		update(t, s, func(tx *Tx) (err error) { n, err = tx.PruneAudit(year, keepFrom, 100); return })
		return n
	}
	left := func() (out []int64) {
		rows, err := s.DB().Query(`SELECT id FROM audit ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			out = append(out, id)
		}
		return out
	}
	if from := waitingFrom(); from != ids[2] {
		t.Fatalf("waiting from %d, want %d", from, ids[2])
	}
	if n := prune(waitingFrom()); n != 2 || !slices.Equal(left(), ids[2:]) {
		t.Errorf("pruned %d, left %v, want 2 pruned and %v left", n, left(), ids[2:])
	}
	// Only what retention pruned could be deleted.
	if _, err := s.DB().Exec(`DELETE FROM audit WHERE id = ?`, ids[3]); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("a delete above the horizon: %v", err)
	}
	if _, err := s.DB().Exec(`UPDATE audit_horizon SET before = 0`); err == nil || !strings.Contains(err.Error(), "only moves forward") {
		t.Errorf("the horizon moved back: %v", err)
	}
	// Set aside, the copy still waits.
	update(t, s, func(tx *Tx) error {
		b, err := tx.HubBatch(0, 10)
		if err != nil || len(b) != 1 {
			return fmt.Errorf("queue: %v %v", b, err)
		}
		_, err = tx.SetAsideHub(b[0].ID, "refused")
		return err
	})
	if from := waitingFrom(); from != ids[2] {
		t.Errorf("set aside: waiting from %d, want %d", from, ids[2])
	}
	update(t, s, func(tx *Tx) error { _, err := tx.exec(`DELETE FROM hub_set_aside`); return err })
	if from := waitingFrom(); from != 0 {
		t.Errorf("none waits: waiting from %d", from)
	}
	clk.Set(boot) // a clock back in 1970 prunes nothing
	if n := prune(0); n != 0 {
		t.Errorf("pruned %d with the clock in 1970", n)
	}
	clk.Set(set.Add(400 * 24 * time.Hour))
	if n := prune(0); n != 2 || !slices.Equal(left(), ids[4:]) {
		t.Errorf("pruned %d, left %v, want %v", n, left(), ids[4:])
	}
}
