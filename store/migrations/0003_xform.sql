-- Inbound messages that carried a form submission: the form's id and the
-- instance's id (meta/instanceID). Empty for ordinary messages.
ALTER TABLE messages ADD COLUMN form_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
