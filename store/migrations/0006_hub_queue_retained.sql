-- Outpost's own retained state (a modem's status) replaces what is still
-- queued on its topic: the hub needs the latest, not every poll of a
-- week offline. This finds the row to replace without a scan.
CREATE INDEX hub_queue_retained ON hub_queue (topic) WHERE retain = 1;
