-- Statistics (outpost stats) read by time windows, without a scan of
-- the whole table: what an address sent (its messages in, its last one)
-- and the parts each modem sent.
CREATE INDEX messages_from ON messages (from_addr, created_at);
CREATE INDEX sent_parts_sent ON sent_parts (sent_at, modem);
