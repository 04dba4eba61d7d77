-- Contacts: an id is never given twice (AUTOINCREMENT: a deleted
-- contact's id is not reused by the next contact, which would make an
-- old reference — the audit log, an export, a script — name someone
-- else), and a name is unique whatever its case in any alphabet
-- (name_key: the name case-folded by Outpost's outpost_fold, rune by
-- rune; COLLATE NOCASE folds ASCII only, so "Zoë" and "ZOË" coexisted).
-- Names that fold alike and were stored before stay (they cannot be
-- merged without asking); new ones are refused.
--
-- SQLite cannot add AUTOINCREMENT to a table, so it is rebuilt as 0011
-- rebuilt deliveries: the tables whose rows reference contacts are set
-- aside (dropping a table they reference would cascade or fail), the
-- table is copied, and they are put back as they were. The ids are kept,
-- and sqlite_sequence starts at the largest.
CREATE TABLE contact_phones_0023 AS SELECT * FROM contact_phones;
CREATE TABLE contact_group_members_0023 AS SELECT * FROM contact_group_members;
DROP TABLE contact_phones;
DROP TABLE contact_group_members;
CREATE TABLE contacts_0023 (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT NOT NULL COLLATE NOCASE UNIQUE,
	name_key   TEXT NOT NULL DEFAULT '',   -- the name case-folded (store.FoldName)
	email      TEXT NOT NULL DEFAULT '',
	xmpp       TEXT NOT NULL DEFAULT '',
	language   TEXT NOT NULL DEFAULT '',
	tags       TEXT NOT NULL DEFAULT '', -- comma-separated
	notes      TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
INSERT INTO contacts_0023 (id, name, name_key, email, xmpp, language, tags, notes, created_at, updated_at)
	SELECT id, name, outpost_fold(name), email, xmpp, language, tags, notes, created_at, updated_at FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_0023 RENAME TO contacts;
CREATE UNIQUE INDEX contacts_email ON contacts (email COLLATE NOCASE) WHERE email != '';
CREATE UNIQUE INDEX contacts_xmpp ON contacts (xmpp COLLATE NOCASE) WHERE xmpp != '';
CREATE INDEX contacts_name_key ON contacts (name_key);
-- The ids of contacts deleted before this migration, as far as the audit
-- log still names them, are not given again either.
INSERT INTO sqlite_sequence (name, seq) SELECT 'contacts', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'contacts');
UPDATE sqlite_sequence SET seq = max(seq, (SELECT COALESCE(MAX(CAST(target AS INTEGER)), 0) FROM audit
	WHERE op IN ('contact/add', 'contact/edit', 'contact/rm'))) WHERE name = 'contacts';

CREATE TABLE contact_phones (
	phone      TEXT PRIMARY KEY,
	contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	pos        INTEGER NOT NULL
);
INSERT INTO contact_phones (phone, contact_id, pos) SELECT phone, contact_id, pos FROM contact_phones_0023;
DROP TABLE contact_phones_0023;
CREATE INDEX contact_phones_contact ON contact_phones (contact_id, pos);

CREATE TABLE contact_group_members (
	group_name TEXT NOT NULL REFERENCES contact_groups (name) ON DELETE CASCADE,
	contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	PRIMARY KEY (group_name, contact_id)
);
INSERT INTO contact_group_members (group_name, contact_id) SELECT group_name, contact_id FROM contact_group_members_0023;
DROP TABLE contact_group_members_0023;
CREATE INDEX contact_group_members_contact ON contact_group_members (contact_id);
