-- Email conversations: a phone that was mailed through the email
-- connector answers by SMS, and the answer goes back as email to the
-- address that mailed it, threaded on the last Message-ID, until the
-- conversation expires (updated on every mail and answer).
CREATE TABLE email_conversations (
	phone       TEXT PRIMARY KEY,
	email       TEXT NOT NULL,
	last_msg_id TEXT NOT NULL DEFAULT '',
	refs        TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);

-- The threading headers of each email an inbound SMS is delivered as,
-- fixed when the delivery is created so that a retry sends the same mail.
CREATE TABLE email_threads (
	message_id  TEXT PRIMARY KEY REFERENCES messages (id),
	mail_id     TEXT NOT NULL,
	in_reply_to TEXT NOT NULL DEFAULT '',
	refs        TEXT NOT NULL DEFAULT ''
);
