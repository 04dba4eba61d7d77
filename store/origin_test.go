package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestOriginMigration: messages stored before migration 0010 get their
// channel from their source, an inbound SMS's number as its tel: sender,
// and their kind from what they hold; new messages keep what they say.
func TestOriginMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "o.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Back to the schema of 0009, with the rows an older Outpost wrote
	// (the indexes of 0020 on the columns of 0010 go first, and come
	// back after 0010).
	for _, q := range []string{
		`DROP INDEX messages_from`,
		`DROP INDEX sent_parts_sent`,
		`DROP INDEX messages_created`,
		`CREATE INDEX messages_created ON messages (created_at, id)`,
		`DELETE FROM schema_migrations WHERE version = 20`,
		`ALTER TABLE messages DROP COLUMN channel`,
		`ALTER TABLE messages DROP COLUMN from_addr`,
		`ALTER TABLE messages DROP COLUMN kind`,
		`DELETE FROM schema_migrations WHERE version = 10`,
		`INSERT INTO messages (id, direction, peer, text, source, created_at) VALUES ('in-text', 'in', '+15555550100', 'hi', 'sms', 1)`,
		`INSERT INTO messages (id, direction, peer, text, source, form_id, created_at) VALUES ('in-form', 'in', '0712345678', '<x/>', 'sms', 'f1', 2)`,
		`INSERT INTO messages (id, direction, peer, data, source, created_at) VALUES ('in-raw', 'in', 'unknown', x'00', 'sms', 3)`,
		`INSERT INTO messages (id, direction, peer, text, source, created_at) VALUES ('in-alpha', 'in', 'MPESA', 'paid', 'sms', 4)`,
		`INSERT INTO messages (id, direction, peer, text, source, created_at) VALUES ('out-text', 'out', '+15555550100', 'yo', 'mqtt', 5)`,
		`INSERT INTO messages (id, direction, peer, data, source, created_at) VALUES ('out-data', 'out', '+15555550100', x'01', 'http', 6)`,
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	if s, err = Open(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct{ id, channel, from, kind string }{
		{"in-text", "sms", "tel:+15555550100", KindText},
		{"in-form", "sms", "tel:0712345678", KindForm},
		{"in-raw", "sms", "", KindData},
		{"in-alpha", "sms", "", KindText},
		{"out-text", "mqtt", "", KindText},
		{"out-data", "http", "", KindData},
	} {
		var m Message
		if err := s.View(ctx, func(tx *Tx) (err error) { m, err = tx.Message(c.id); return }); err != nil {
			t.Fatal(err)
		}
		if m.Channel != c.channel || m.FromAddr != c.from || m.Kind != c.kind {
			t.Errorf("%s: channel %q from %q kind %q; want %q %q %q", c.id, m.Channel, m.FromAddr, m.Kind, c.channel, c.from, c.kind)
		}
	}
	m := &Message{Direction: Out, Peer: "webhook:crm", Text: text("x"), Channel: "cli", FromAddr: "mqtt:dev", Kind: KindText}
	var got Message
	err = s.Update(ctx, func(tx *Tx) (err error) {
		if err = tx.InsertMessage(m); err == nil {
			got, err = tx.Message(m.ID)
		}
		return
	})
	if err != nil || got.Channel != "cli" || got.FromAddr != "mqtt:dev" || got.Kind != KindText {
		t.Errorf("stored and read back: %+v, %v", got, err)
	}
}
