package store

import (
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"modernc.org/sqlite"
)

// FoldName is a contact's name as names are compared: trimmed, each
// letter case-folded (Unicode simple folding: "ZOË ÑÚÑEZ" and "zoë
// ñúñez" are one name, and so are "ΟΔΟΣ" and "οδος"). Spellings that
// differ only in Unicode normalisation (NFC "ë" and NFD "e" + U+0308) are
// not folded: that takes tables Outpost does not carry.
func FoldName(s string) string {
	return strings.Map(func(r rune) rune {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		return min
	}, strings.TrimSpace(s))
}

// outpost_fold is FoldName in SQL, for migration 0023 (it fills
// contacts.name_key). It is used by no schema object, so the file stays
// readable by any SQLite.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("outpost_fold", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		s, _ := args[0].(string)
		return FoldName(s), nil
	})
}

// ErrExists marks a contact or group that would take a name or an
// address another one already has.
var ErrExists = errors.New("already exists")

// Contact is a person Outpost can reach: by its numbers (tel: form,
// E.164: "+15555550100"), its email and its XMPP address, each unique
// among contacts.
type Contact struct {
	ID       int64
	Name     string
	Phones   []string // the first is the one a group send uses
	Email    string
	XMPP     string
	Language string
	Tags     []string
	Notes    string
	Groups   []string // read only: the groups it is in, by name
}

// queryRow and execStmt run q as a prepared statement kept by the store
// (an import runs the same few statements for every row: preparing them
// each time was half its time).
func (tx *Tx) queryRow(q string, args ...any) *sql.Row {
	st, err := tx.stmt(q)
	if err != nil {
		return tx.tx.QueryRowContext(tx.ctx, q, args...)
	}
	return st.QueryRowContext(tx.ctx, args...)
}

func (tx *Tx) execStmt(q string, args ...any) (sql.Result, error) {
	st, err := tx.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(tx.ctx, args...)
}

// existsError says which field of a contact is already another's.
type existsError struct{ msg string }

func (e existsError) Error() string        { return e.msg }
func (e existsError) Is(target error) bool { return target == ErrExists }

// SaveContact inserts c (ID 0; its new id is set) or replaces the
// contact with c's ID. A name, number, email or XMPP address another
// contact has is refused with ErrExists, naming the field and the
// contact; an ID no contact has is ErrNotFound.
func (tx *Tx) SaveContact(c *Contact) error {
	other := func(q string, args ...any) (string, error) {
		var name string
		err := tx.queryRow(q, args...).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return name, err
	}
	key := FoldName(c.Name)
	if n, err := other(`SELECT name FROM contacts WHERE (name_key = ? OR name = ?) AND id != ?`, key, c.Name, c.ID); err != nil || n != "" {
		if n != c.Name {
			return orExists(err, fmt.Sprintf(`"name" %q: a contact has that name already (%q)`, c.Name, n))
		}
		return orExists(err, fmt.Sprintf(`"name" %q: a contact has that name already`, c.Name))
	}
	for _, p := range c.Phones {
		if n, err := other(`SELECT c.name FROM contact_phones p JOIN contacts c ON c.id = p.contact_id WHERE p.phone = ? AND p.contact_id != ?`, p, c.ID); err != nil || n != "" {
			return orExists(err, fmt.Sprintf(`"phones": %s is already %s's number`, p, n))
		}
	}
	if c.Email != "" {
		if n, err := other(`SELECT name FROM contacts WHERE email = ? COLLATE NOCASE AND email != '' AND id != ?`, c.Email, c.ID); err != nil || n != "" {
			return orExists(err, fmt.Sprintf(`"email": %s is already %s's email`, c.Email, n))
		}
	}
	if c.XMPP != "" {
		if n, err := other(`SELECT name FROM contacts WHERE xmpp = ? COLLATE NOCASE AND xmpp != '' AND id != ?`, c.XMPP, c.ID); err != nil || n != "" {
			return orExists(err, fmt.Sprintf(`"xmpp": %s is already %s's XMPP address`, c.XMPP, n))
		}
	}
	now := ms(tx.now)
	tags := strings.Join(c.Tags, ",")
	if c.ID == 0 {
		res, err := tx.execStmt(`INSERT INTO contacts (name, name_key, email, xmpp, language, tags, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Name, key, c.Email, c.XMPP, c.Language, tags, c.Notes, now, now)
		if err != nil {
			return fmt.Errorf("store contact: %w", err)
		}
		if c.ID, err = res.LastInsertId(); err != nil {
			return err
		}
	} else {
		res, err := tx.execStmt(`UPDATE contacts SET name = ?, name_key = ?, email = ?, xmpp = ?, language = ?, tags = ?, notes = ?, updated_at = ? WHERE id = ?`,
			c.Name, key, c.Email, c.XMPP, c.Language, tags, c.Notes, now, c.ID)
		if err != nil {
			return fmt.Errorf("store contact: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("contact %d: %w", c.ID, ErrNotFound)
		}
		if _, err := tx.execStmt(`DELETE FROM contact_phones WHERE contact_id = ?`, c.ID); err != nil {
			return err
		}
	}
	for i, p := range c.Phones {
		if _, err := tx.execStmt(`INSERT INTO contact_phones (phone, contact_id, pos) VALUES (?, ?, ?)`, p, c.ID, i); err != nil {
			return fmt.Errorf("store contact's number %s: %w", p, err)
		}
	}
	return nil
}

func orExists(err error, msg string) error {
	if err != nil {
		return err
	}
	return existsError{msg}
}

// DeleteContact deletes a contact (and its place in every group);
// ErrNotFound when there is none with that id.
func (tx *Tx) DeleteContact(id int64) error {
	res, err := tx.exec(`DELETE FROM contacts WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("contact %d: %w", id, ErrNotFound)
	}
	return nil
}

// Contact reads a contact by id; ErrNotFound when there is none.
func (tx *Tx) Contact(id int64) (Contact, error) {
	cs, err := tx.contacts(`id = ?`, id)
	if err == nil && len(cs) == 0 {
		err = fmt.Errorf("contact %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Contact{}, err
	}
	return cs[0], nil
}

// ContactByName reads a contact by name, whatever its case (FoldName);
// ErrNotFound when there is none. Of names stored before they were
// compared so (they may fold alike), the one spelt exactly is taken, and
// otherwise the name is ambiguous (ErrNotFound naming them).
func (tx *Tx) ContactByName(name string) (Contact, error) {
	cs, err := tx.contacts(`name_key = ?`, FoldName(name))
	if err == nil && len(cs) == 0 {
		err = fmt.Errorf("contact %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Contact{}, err
	}
	if len(cs) > 1 {
		var names []string
		for _, c := range cs {
			if c.Name == strings.TrimSpace(name) {
				return c, nil
			}
			names = append(names, fmt.Sprintf("%q (id %d)", c.Name, c.ID))
		}
		return Contact{}, fmt.Errorf("contact %q is ambiguous: %s; give its id: %w", name, strings.Join(names, ", "), ErrNotFound)
	}
	return cs[0], nil
}

// Contacts lists every contact, by name.
func (tx *Tx) Contacts() ([]Contact, error) {
	return tx.contacts(`1`)
}

// ContactsPage lists at most limit contacts by name, after the contact
// cursor names (from an earlier page; "": from the first), and the cursor
// of the next page ("" when none is left). A cursor that is not one this
// returned is ErrInvalid.
func (tx *Tx) ContactsPage(cursor string, limit int) ([]Contact, string, error) {
	where, args := `1`, []any{}
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		idText, name, ok := strings.Cut(string(b), ":")
		id, perr := strconv.ParseInt(idText, 10, 64)
		if err != nil || !ok || perr != nil {
			return nil, "", fmt.Errorf("%w: cursor %q is not one a listing returned", ErrInvalid, cursor)
		}
		where, args = `(name > ? OR (name = ? AND id > ?))`, []any{name, name, id}
	}
	cs, err := tx.contactsLimit(where, limit+1, args...)
	if err != nil || len(cs) <= limit {
		return cs, "", err
	}
	cs = cs[:limit]
	last := cs[limit-1]
	return cs, base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d:%s", last.ID, last.Name))), nil
}

// GroupMembers lists the members of a group, by name; ErrNotFound when
// there is no such group.
func (tx *Tx) GroupMembers(group string) ([]Contact, error) {
	name, err := tx.groupName(group)
	if err != nil {
		return nil, err
	}
	return tx.contacts(`id IN (SELECT contact_id FROM contact_group_members WHERE group_name = ?)`, name)
}

// contacts reads the contacts a condition on the contacts table selects,
// by name, with their numbers and groups (three queries, whatever their
// number: 5,000 contacts were read in 200 ms with two queries each).
func (tx *Tx) contacts(where string, args ...any) ([]Contact, error) {
	return tx.contactsLimit(where, 0, args...)
}

// contactsLimit is contacts, the first limit of them (0: all).
func (tx *Tx) contactsLimit(where string, limit int, args ...any) ([]Contact, error) {
	if limit > 0 {
		// The same rows in the queries of numbers and groups below.
		where = `id IN (SELECT id FROM contacts WHERE ` + where + ` ORDER BY name, id LIMIT ` + strconv.Itoa(limit) + `)`
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, name, email, xmpp, language, tags, notes FROM contacts WHERE `+where+` ORDER BY name, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	var out []Contact
	byID := map[int64]*Contact{}
	for rows.Next() {
		var c Contact
		var tags string
		if err := rows.Scan(&c.ID, &c.Name, &c.Email, &c.XMPP, &c.Language, &tags, &c.Notes); err != nil {
			rows.Close()
			return nil, err
		}
		if tags != "" {
			c.Tags = strings.Split(tags, ",")
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	each := func(q string, f func(c *Contact, v string)) error {
		rows, err := tx.tx.QueryContext(tx.ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			if c := byID[id]; c != nil {
				f(c, v)
			}
		}
		return rows.Err()
	}
	if err := each(`SELECT contact_id, phone FROM contact_phones WHERE contact_id IN (SELECT id FROM contacts WHERE `+where+`) ORDER BY contact_id, pos`,
		func(c *Contact, v string) { c.Phones = append(c.Phones, v) }); err != nil {
		return nil, err
	}
	if err := each(`SELECT contact_id, group_name FROM contact_group_members WHERE contact_id IN (SELECT id FROM contacts WHERE `+where+`) ORDER BY group_name`,
		func(c *Contact, v string) { c.Groups = append(c.Groups, v) }); err != nil {
		return nil, err
	}
	return out, nil
}

// ContactGroup is a group with how many members it has.
type ContactGroup struct {
	Name    string
	Members int
}

// groupName is a group's name as stored (groups are found whatever the
// case); ErrNotFound when there is none.
func (tx *Tx) groupName(name string) (string, error) {
	var stored string
	err := tx.queryRow(`SELECT name FROM contact_groups WHERE name = ?`, name).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return stored, err
}

// AddGroup creates a group; ErrExists when one has that name (whatever
// the case).
func (tx *Tx) AddGroup(name string) error {
	if _, err := tx.groupName(name); err == nil {
		return existsError{fmt.Sprintf("group %q exists already", name)}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err := tx.exec(`INSERT INTO contact_groups (name, created_at) VALUES (?, ?)`, name, ms(tx.now))
	return err
}

// DeleteGroup deletes a group (not its members) and returns its name as
// stored; ErrNotFound when there is none.
func (tx *Tx) DeleteGroup(name string) (string, error) {
	stored, err := tx.groupName(name)
	if err != nil {
		return "", err
	}
	if _, err := tx.exec(`DELETE FROM contact_groups WHERE name = ?`, stored); err != nil {
		return "", err
	}
	return stored, nil
}

// ContactGroups lists every group with its number of members, by name.
func (tx *Tx) ContactGroups() ([]ContactGroup, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT g.name, (SELECT COUNT(*) FROM contact_group_members m WHERE m.group_name = g.name) FROM contact_groups g ORDER BY g.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ContactGroup
	for rows.Next() {
		var g ContactGroup
		if err := rows.Scan(&g.Name, &g.Members); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupName is a group's name as stored (groups are found whatever the
// case); ErrNotFound when there is none.
func (tx *Tx) GroupName(name string) (string, error) { return tx.groupName(name) }

// AddMember puts a contact in a group; added is false when it was in it
// already (no change). ErrNotFound when either does not exist.
func (tx *Tx) AddMember(group string, contact int64) (added bool, err error) {
	name, err := tx.groupName(group)
	if err != nil {
		return false, err
	}
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM contacts WHERE id = ?`, contact).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return false, fmt.Errorf("contact %d: %w", contact, ErrNotFound)
	}
	res, err := tx.execStmt(`INSERT OR IGNORE INTO contact_group_members (group_name, contact_id) VALUES (?, ?)`, name, contact)
	if err != nil {
		return false, err
	}
	k, _ := res.RowsAffected()
	return k > 0, nil
}

// RemoveMember takes a contact out of a group; ErrNotFound when the
// group does not exist or the contact is not in it.
func (tx *Tx) RemoveMember(group string, contact int64) error {
	name, err := tx.groupName(group)
	if err != nil {
		return err
	}
	res, err := tx.exec(`DELETE FROM contact_group_members WHERE group_name = ? AND contact_id = ?`, name, contact)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("contact %d is not in group %q: %w", contact, name, ErrNotFound)
	}
	return nil
}
