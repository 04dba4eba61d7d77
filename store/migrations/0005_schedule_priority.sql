-- Send options of an outbound message: its priority (higher goes first),
-- the time before which it is not sent (state scheduled until then) and
-- the time after which it is no longer sent (state expired), unix ms, 0
-- for none.
ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
-- Copied to each delivery, where the dispatcher orders and expires them
-- without a join.
ALTER TABLE deliveries ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_expiring ON deliveries (expires_at)
	WHERE expires_at > 0 AND state IN ('queued', 'scheduled');
