-- Messages: one row per SMS (inbound: after reassembly) or send request.
CREATE TABLE messages (
	id         TEXT PRIMARY KEY,                 -- UUIDv7, time-sortable
	direction  TEXT NOT NULL CHECK (direction IN ('in', 'out')),
	peer       TEXT NOT NULL,                    -- originator (in) or recipients (out)
	modem      TEXT NOT NULL DEFAULT '',
	text       TEXT,                             -- NULL when the payload is binary
	data       BLOB,                             -- 8-bit payload, or the raw PDU when undecodable
	coding     TEXT NOT NULL DEFAULT '',         -- gsm7, ucs2, 8bit
	parts      INTEGER NOT NULL DEFAULT 1,
	smsc       TEXT NOT NULL DEFAULT '',
	scts       TEXT NOT NULL DEFAULT '',         -- RFC 3339 with the sender's offset
	report     INTEGER NOT NULL DEFAULT 0,
	flash      INTEGER NOT NULL DEFAULT 0,
	source     TEXT NOT NULL DEFAULT '',         -- sms, mqtt, http, cli
	dedup_key  TEXT UNIQUE,                      -- natural key of an inbound SMS
	state      TEXT NOT NULL DEFAULT '',         -- inbound: complete, incomplete, undecodable
	detail     TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL                  -- unix milliseconds
);
CREATE INDEX messages_direction_created ON messages (direction, created_at DESC, id DESC);

-- One row per message x destination; state is the latest, history is in events.
CREATE TABLE deliveries (
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
	UNIQUE (message_id, connector, recipient)
);
CREATE INDEX deliveries_due ON deliveries (connector, state, next_at);

-- The parts of an outbound SMS as the modem accepted them, for status reports.
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

-- Append-only history of every state change.
CREATE TABLE events (
	id          INTEGER PRIMARY KEY,
	message_id  TEXT NOT NULL,
	delivery_id INTEGER,
	at          INTEGER NOT NULL,
	state       TEXT NOT NULL,
	detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_message ON events (message_id, id);

-- Parts of concatenated inbound SMS. Rows stay (with message_id set) after
-- the message is complete, so a part read again from the SIM is known.
CREATE TABLE inbound_parts (
	id          INTEGER PRIMARY KEY,
	group_key   TEXT NOT NULL,                   -- modem|originator|ref bits|ref|total
	seq         INTEGER NOT NULL,
	total       INTEGER NOT NULL,
	pdu         BLOB NOT NULL,                   -- the TPDU
	received_at INTEGER NOT NULL,
	message_id  TEXT,
	UNIQUE (group_key, seq)
);
CREATE INDEX inbound_parts_open ON inbound_parts (message_id, received_at);

-- Small durable counters and settings.
CREATE TABLE kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
