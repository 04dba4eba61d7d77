package store

import (
	"context"
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
