-- Contacts and their groups (outpost contact …, outpost group …). A
-- contact is unique by its name and by each of its addresses: a phone
-- number (tel: form, E.164) belongs to one contact, so does an email or
-- an XMPP address. A contact may be in many groups; a send to
-- group:<name> reaches its members on the channels asked.
CREATE TABLE contacts (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL COLLATE NOCASE UNIQUE,
	email      TEXT NOT NULL DEFAULT '',
	xmpp       TEXT NOT NULL DEFAULT '',
	language   TEXT NOT NULL DEFAULT '',
	tags       TEXT NOT NULL DEFAULT '', -- comma-separated
	notes      TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX contacts_email ON contacts (email COLLATE NOCASE) WHERE email != '';
CREATE UNIQUE INDEX contacts_xmpp ON contacts (xmpp COLLATE NOCASE) WHERE xmpp != '';

-- A contact's numbers, in the order given (the first is the one a group
-- send uses).
CREATE TABLE contact_phones (
	phone      TEXT PRIMARY KEY,
	contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	pos        INTEGER NOT NULL
);
CREATE INDEX contact_phones_contact ON contact_phones (contact_id, pos);

CREATE TABLE contact_groups (
	name       TEXT PRIMARY KEY COLLATE NOCASE,
	created_at INTEGER NOT NULL
);

CREATE TABLE contact_group_members (
	group_name TEXT NOT NULL REFERENCES contact_groups (name) ON DELETE CASCADE,
	contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	PRIMARY KEY (group_name, contact_id)
);
CREATE INDEX contact_group_members_contact ON contact_group_members (contact_id);
