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
-- Its size and what its limits cost, kept by triggers so that checking a
-- limit never scans the queue.
CREATE TABLE hub_queue_stats (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	messages INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	dropped  INTEGER NOT NULL DEFAULT 0, -- oldest dropped to make room
	expired  INTEGER NOT NULL DEFAULT 0, -- older than the age limit
	refused  INTEGER NOT NULL DEFAULT 0  -- new ones refused when full
);
INSERT INTO hub_queue_stats (id, messages, bytes) VALUES (1, 0, 0);
CREATE TRIGGER hub_queue_in AFTER INSERT ON hub_queue BEGIN
	UPDATE hub_queue_stats SET messages = messages + 1, bytes = bytes + length(NEW.payload) WHERE id = 1;
END;
CREATE TRIGGER hub_queue_out AFTER DELETE ON hub_queue BEGIN
	UPDATE hub_queue_stats SET messages = messages - 1, bytes = bytes - length(OLD.payload) WHERE id = 1;
END;
