-- A message routed to the hub is a delivery (connector "hub") whose copy
-- waits in the hub queue: the row names its delivery, so that the hub's
-- PUBACK (the delete of the row) makes it sent, and an expiry, a drop, a
-- set-aside or a cancel ends it. Status copies and pass-through have none
-- (NULL): no row of their own, no index entry.
ALTER TABLE hub_queue ADD COLUMN delivery_id INTEGER;
ALTER TABLE hub_set_aside ADD COLUMN delivery_id INTEGER;
CREATE INDEX hub_queue_delivery ON hub_queue (delivery_id) WHERE delivery_id IS NOT NULL;
