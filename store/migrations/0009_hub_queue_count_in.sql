-- The hub queue's stats count stored messages in the statement that
-- stores them (store.insertHub), once per batch: the trigger updated the
-- stats row once per message. Deletes are still counted by hub_queue_out.
DROP TRIGGER hub_queue_in;
