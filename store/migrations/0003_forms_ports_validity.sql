-- Inbound messages that carried a form submission: the form's id and the
-- instance's id (meta/instanceID). Empty for ordinary messages.
ALTER TABLE messages ADD COLUMN form_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
-- Outbound options: the application port of 8-bit data (0: none) and the
-- relative validity period in seconds (0: the SMSC's default).
ALTER TABLE messages ADD COLUMN port INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN validity_s INTEGER NOT NULL DEFAULT 0;
