-- Messages the hub keeps refusing (it dropped the connection twice on the
-- same message) are set aside here, out of the queue, so that what comes
-- after them still goes: kept with the reason, never deleted silently
-- (only the oldest beyond the newest 1,000).
CREATE TABLE hub_set_aside (
	id           INTEGER PRIMARY KEY, -- its id in hub_queue
	topic        TEXT NOT NULL,
	payload      BLOB NOT NULL,
	qos          INTEGER NOT NULL,
	retain       INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	set_aside_at INTEGER NOT NULL,
	reason       TEXT NOT NULL
);
ALTER TABLE hub_queue_stats ADD COLUMN set_aside INTEGER NOT NULL DEFAULT 0; -- set aside so far
