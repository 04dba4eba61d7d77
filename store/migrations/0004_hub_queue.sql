-- The durable queue to the central hub: what is forwarded leaves this
-- table only when the hub acknowledged it (PUBACK), oldest first.
CREATE TABLE hub_queue (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	topic      TEXT NOT NULL,
	payload    BLOB NOT NULL,
	qos        INTEGER NOT NULL,
	retain     INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
