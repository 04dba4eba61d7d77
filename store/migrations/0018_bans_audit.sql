-- Bans: numbers (or addresses) whose messages are stored, marked and
-- not routed or answered, and to which nothing is sent.
CREATE TABLE bans (
	addr    TEXT PRIMARY KEY,          -- tel:+…, mailto:…
	at      INTEGER NOT NULL,          -- when (ms, the clock's)
	by      TEXT NOT NULL DEFAULT '',  -- who banned it
	channel TEXT NOT NULL DEFAULT '',  -- cli, http, mqtt
	reason  TEXT NOT NULL DEFAULT ''
);
-- The audit log: every state-changing action, who asked, from where,
-- what, when. Append-only: updates and deletes are refused.
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,          -- when (ms, the clock's)
	who     TEXT NOT NULL,
	channel TEXT NOT NULL,
	op      TEXT NOT NULL,             -- send, cancel, retry, ban, unban, …
	target  TEXT NOT NULL DEFAULT '',  -- the message id, the address…
	detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
