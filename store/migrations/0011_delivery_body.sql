-- A delivery may carry the body it delivers, fixed when it is created: a
-- webhook's sms.status event describes the state change that made it,
-- whatever the message's state is when the POST goes out. NULL: the
-- connector builds what it delivers from the message.
--
-- Such a delivery is one event, and a message makes several for the same
-- webhook (one per state change): UNIQUE (message_id, connector,
-- recipient) holds only for deliveries without a body. SQLite cannot drop
-- a table's constraint, so the table is rebuilt: a new one, the rows
-- copied, the old one dropped and the new one renamed. sent_parts, whose
-- rows reference deliveries, is set aside meanwhile (dropping a table its
-- rows reference is a foreign key violation, also a deferred one) and put
-- back as it was.
-- NOTE for a migration numbered before this one that adds columns to
-- deliveries or sent_parts: add them here too.
CREATE TABLE sent_parts_0011 AS SELECT * FROM sent_parts;
DROP TABLE sent_parts;
CREATE TABLE deliveries_0011 (
	id         INTEGER PRIMARY KEY,
	message_id TEXT NOT NULL REFERENCES messages (id),
	connector  TEXT NOT NULL,
	recipient  TEXT NOT NULL DEFAULT '',
	state      TEXT NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    INTEGER NOT NULL DEFAULT 0,       -- not before (unix ms)
	last_error TEXT NOT NULL DEFAULT '',
	concat_ref INTEGER,                          -- SMS: kept across retries so parts match
	updated_at INTEGER NOT NULL,
	priority   INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL DEFAULT 0,
	body       BLOB                              -- what it delivers, when fixed at creation
);
INSERT INTO deliveries_0011 (id, message_id, connector, recipient, state, attempts, next_at, last_error, concat_ref, updated_at, priority, expires_at)
	SELECT id, message_id, connector, recipient, state, attempts, next_at, last_error, concat_ref, updated_at, priority, expires_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_0011 RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_one ON deliveries (message_id, connector, recipient) WHERE body IS NULL;
CREATE INDEX deliveries_message ON deliveries (message_id, id);
CREATE INDEX deliveries_due ON deliveries (connector, state, next_at);
CREATE INDEX deliveries_expiring ON deliveries (expires_at)
	WHERE expires_at > 0 AND state IN ('queued', 'scheduled');
-- The unfinished deliveries of one connector to one recipient, in the
-- order they were created (a webhook's events go out in order).
CREATE INDEX deliveries_lane ON deliveries (connector, recipient, id)
	WHERE state IN ('queued', 'scheduled', 'sending');
CREATE TABLE sent_parts (
	delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
	seq         INTEGER NOT NULL,
	total       INTEGER NOT NULL,
	modem       TEXT NOT NULL,
	mr          INTEGER NOT NULL,                -- TP-MR from +CMGS
	recipient   TEXT NOT NULL,
	state       TEXT NOT NULL,                   -- sent, delivered, failed
	status      INTEGER,                         -- TP-ST of the last report
	sent_at     INTEGER NOT NULL,
	PRIMARY KEY (delivery_id, seq)
);
CREATE INDEX sent_parts_mr ON sent_parts (modem, mr, sent_at);
INSERT INTO sent_parts (delivery_id, seq, total, modem, mr, recipient, state, status, sent_at)
	SELECT delivery_id, seq, total, modem, mr, recipient, state, status, sent_at FROM sent_parts_0011;
DROP TABLE sent_parts_0011;
