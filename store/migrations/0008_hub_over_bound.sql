-- Outpost's own messages for the hub (sms/in, sms/status/…, replies) are
-- never refused for a full queue: under when_full = "refuse" (or when one
-- alone is larger than max_bytes) they are queued past the bound and
-- counted here. requeued counts the set-aside messages put back in the
-- queue (outpost hub requeue).
ALTER TABLE hub_queue_stats ADD COLUMN over_bound INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hub_queue_stats ADD COLUMN requeued INTEGER NOT NULL DEFAULT 0;
