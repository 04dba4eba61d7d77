-- Message management (outpost messages, mark, rm) and retention.
-- An inbound message is marked read and/or handled by a person (a light
-- inbox workflow): 0 or 1.
ALTER TABLE messages ADD COLUMN read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN handled INTEGER NOT NULL DEFAULT 0;
-- Listing every message newest first (outpost messages with no
-- direction), and the pruner's oldest first.
CREATE INDEX messages_created ON messages (created_at, id);
-- What a number sent or was sent.
CREATE INDEX messages_peer ON messages (peer, created_at, id);
-- The deliveries of one recipient (outbound messages to a number).
CREATE INDEX deliveries_recipient ON deliveries (recipient, message_id);
-- The pruner ages the history of messages kept by time.
CREATE INDEX events_at ON events (at);
