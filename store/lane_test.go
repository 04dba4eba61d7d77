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
