-- The modem an answer to an inbound SMS goes out through when it can:
-- the one the SMS came in on (bridge/sms prefers it).
CREATE TABLE reply_modems (
	message_id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
	modem      TEXT NOT NULL
);
