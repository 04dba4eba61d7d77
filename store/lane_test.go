package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// A database from before migration 0011, with deliveries and the parts
// that reference them, keeps every row through the rebuild of deliveries;
// afterwards one message may have several deliveries with a body to the
// same recipient, and one without a body is still unique.
func TestMigration0011KeepsDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`)
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(n), "0011") {
			break
		}
		b, _ := migrations.ReadFile(n)
		mustExec(string(b))
		v := filepath.Base(n)[:4]
		mustExec(`INSERT INTO schema_migrations VALUES (?, 1)`, strings.TrimLeft(v, "0"))
	}
	// Sane times (an hour ago), which the start leaves as they are.
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	mustExec(`INSERT INTO messages (id, direction, peer, created_at) VALUES ('m1', 'out', '+1555', ?)`, t0)
	mustExec(`INSERT INTO deliveries (id, message_id, connector, recipient, state, attempts, next_at, last_error, concat_ref, updated_at, priority, expires_at)
		VALUES (7, 'm1', 'sms', '+1555', 'sent', 2, ?, 'e', 42, ?, 3, ?)`, t0+5, t0+6, t0+9)
	mustExec(`INSERT INTO sent_parts (delivery_id, seq, total, modem, mr, recipient, state, sent_at) VALUES (7, 1, 1, 'm', 5, '+1555', 'sent', ?)`, t0+6)
	db.Close()

	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(context.Background(), func(tx *Tx) error {
		d, err := tx.Delivery(7)
		if err != nil {
			return err
		}
		if d.MessageID != "m1" || d.Connector != "sms" || d.Recipient != "+1555" || d.State != "sent" || d.Attempts != 2 ||
			d.NextAt.UnixMilli() != t0+5 || d.LastError != "e" || d.Priority != 3 || d.ExpiresAt.UnixMilli() != t0+9 || d.UpdatedAt.UnixMilli() != t0+6 {
			t.Errorf("after the migration: %+v", d)
		}
		var part string
		if err := tx.tx.QueryRow(`SELECT modem || mr || recipient || state || sent_at FROM sent_parts WHERE delivery_id = 7 AND seq = 1`).Scan(&part); err != nil || part != fmt.Sprint("m5+1555sent", t0+6) {
			t.Errorf("sent part %q, %v", part, err)
		}
		var ref int
		if err := tx.tx.QueryRow(`SELECT concat_ref FROM deliveries WHERE id = 7`).Scan(&ref); err != nil || ref != 42 {
			t.Errorf("concat_ref %d, %v", ref, err)
		}
		p, err := tx.tx.Query(`PRAGMA foreign_key_check`)
		if err != nil {
			return err
		}
		defer p.Close()
		if p.Next() {
			t.Errorf("a foreign key is broken after the migration")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(tx *Tx) error {
		for range 2 {
			if err := tx.InsertEventDelivery(&Delivery{MessageID: "m1", Connector: "webhook", Recipient: "crm"}, []byte("{}"), "event"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("two events to one recipient: %v", err)
	}
	err = s.Update(context.Background(), func(tx *Tx) error {
		return tx.InsertDelivery(&Delivery{MessageID: "m1", Connector: "sms", Recipient: "+1555"}, "again")
	})
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("a second sms delivery to the same number: %v", err)
	}
}

// A delivery scheduled for later (a send with "not_before") does not
// hold its lane: the events due now after it go out, oldest first, and
// NextDueLane names its time once nothing else waits; once due it takes
// its place by age again. A retry waiting its backoff still holds the
// lane (the order of a webhook's events).
func TestLaneScheduledDoesNotHold(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	ids := map[string]int64{}
	add := func(name, state string, next time.Time) {
		t.Helper()
		m := &Message{Direction: Out, Peer: "x"}
		if err := s.Update(ctx, func(tx *Tx) error {
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
			d := &Delivery{MessageID: m.ID, Connector: "webhook", Recipient: "crm", State: state, NextAt: next}
			if err := tx.InsertEventDelivery(d, []byte(name), state); err != nil {
				return err
			}
			ids[name] = d.ID
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func() string {
		t.Helper()
		var ds []Delivery
		if err := s.Update(ctx, func(tx *Tx) (err error) { ds, err = tx.ClaimDueLane("webhook", Lane{Recipient: "crm"}, 10); return }); err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return ""
		}
		if len(ds) > 1 {
			t.Fatalf("an ordered lane claimed %d at once", len(ds))
		}
		for n, id := range ids {
			if id == ds[0].ID {
				return n
			}
		}
		return "?"
	}
	finish := func(name string) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Tx) error {
			_, err := tx.SetDeliveryState(ids[name], Transition{State: Delivered})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	next := func() time.Time {
		t.Helper()
		var at time.Time
		if err := s.View(ctx, func(tx *Tx) (err error) { at, err = tx.NextDueLane("webhook", Lane{Recipient: "crm"}); return }); err != nil {
			t.Fatal(err)
		}
		return at
	}
	add("scheduled", Scheduled, later)
	add("e1", Queued, time.Time{})
	add("e2", Queued, time.Time{})
	if at := next(); at.After(time.Now()) {
		t.Fatalf("the lane's next due time is %v, behind the scheduled delivery; e1 is due now", at)
	}
	for _, want := range []string{"e1", "e2"} {
		got := claim()
		if got != want {
			t.Fatalf("claimed %q, want %q (a delivery scheduled for later must not hold the lane)", got, want)
		}
		// e2 waits while e1 is being sent.
		if want == "e1" {
			if again := claim(); again != "" {
				t.Fatalf("claimed %q while e1 is being sent", again)
			}
		}
		finish(want)
	}
	if got := claim(); got != "" {
		t.Fatalf("claimed %q before its time", got)
	}
	if at := next(); at.UnixMilli() != later.UnixMilli() {
		t.Fatalf("next due %v, want the scheduled time %v", at, later)
	}
	// A retry waiting its backoff holds the lane: e4 waits behind e3.
	add("e3", Queued, time.Now().Add(time.Hour))
	add("e4", Queued, time.Time{})
	if got := claim(); got != "" {
		t.Fatalf("claimed %q while e3 waits its backoff", got)
	}
	// Once its time has come, the scheduled one is the oldest again.
	if err := s.Update(ctx, func(tx *Tx) error {
		_, err := tx.tx.Exec(`UPDATE deliveries SET next_at = ? WHERE id IN (?, ?)`, time.Now().Add(-time.Second).UnixMilli(), ids["scheduled"], ids["e3"])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scheduled", "e3", "e4"} {
		if got := claim(); got != want {
			t.Fatalf("claimed %q, want %q", got, want)
		}
		finish(want)
	}
}
