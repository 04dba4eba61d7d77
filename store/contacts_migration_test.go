package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// TestContactIDsMigration: migration 0023 rebuilds the contacts of an
// existing database with AUTOINCREMENT, keeping ids, numbers and groups;
// names get their folded key; the next id is past every id the audit log
// names (a contact deleted before the migration) and past the largest.
func TestContactIDsMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := migrations.ReadFile("migrations/0016_contacts.sql")
	if err != nil {
		t.Fatal(err)
	}
	// Back to the contacts of 0016, with the rows an older Outpost wrote.
	for _, q := range []string{
		`DROP TABLE contact_group_members`, `DROP TABLE contact_phones`, `DROP TABLE contacts`, `DROP TABLE contact_groups`,
		`DELETE FROM sqlite_sequence WHERE name = 'contacts'`,
		`DELETE FROM schema_migrations WHERE version = 23`,
		string(old),
		`INSERT INTO contacts (id, name, created_at, updated_at) VALUES (1, 'Amina', 1, 1), (3, 'ZOË Ñúñez', 1, 1)`,
		`INSERT INTO contact_phones (phone, contact_id, pos) VALUES ('+15555550101', 1, 0), ('+15555550103', 3, 0)`,
		`INSERT INTO contact_groups (name, created_at) VALUES ('staff', 1)`,
		`INSERT INTO contact_group_members (group_name, contact_id) VALUES ('staff', 1), ('staff', 3)`,
		`INSERT INTO audit (at, who, channel, op, target) VALUES (1, 'x', 'cli', 'contact/add', '7'), (2, 'x', 'cli', 'contact/rm', '7')`,
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
	var zoe Contact
	var members []Contact
	c := Contact{Name: "Baraka", Phones: []string{"+15555550102"}}
	if err := s.Update(ctx, func(tx *Tx) (err error) {
		if zoe, err = tx.ContactByName("zoë ñúñez"); err != nil {
			return err
		}
		if members, err = tx.GroupMembers("staff"); err != nil {
			return err
		}
		return tx.SaveContact(&c)
	}); err != nil {
		t.Fatal(err)
	}
	if zoe.ID != 3 || !slices.Equal(zoe.Phones, []string{"+15555550103"}) || !slices.Equal(zoe.Groups, []string{"staff"}) {
		t.Errorf("after the migration: %+v", zoe)
	}
	if len(members) != 2 {
		t.Errorf("staff has %d members, want 2", len(members))
	}
	if c.ID != 8 {
		t.Errorf("the next contact's id is %d, want 8 (past the deleted 7)", c.ID)
	}
}
