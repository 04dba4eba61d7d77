-- Statistics (outpost stats) read time windows through indexes, never a
-- whole table:
-- what an address sent, and when it was last seen;
CREATE INDEX messages_from ON messages (from_addr, created_at);
-- the messages of a window by channel, direction and modem, read from
-- the index alone (the same index, wider: the listing and the pruner
-- read it by (created_at, id) as before);
DROP INDEX messages_created;
CREATE INDEX messages_created ON messages (created_at, id, direction, channel, modem, parts);
-- the parts each modem sent in a window, and how they ended.
CREATE INDEX sent_parts_sent ON sent_parts (sent_at, modem, state, delivery_id);
