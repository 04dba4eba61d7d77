-- XMPP: who chatted to a phone last (the phone's answers go to that user
-- until expires_at), the last SMS each user was shown (". text" answers
-- it), and the chat message each send request came from (its receipt).
CREATE TABLE xmpp_conversations (
	phone      TEXT PRIMARY KEY,
	jid        TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE TABLE xmpp_last_shown (
	jid        TEXT PRIMARY KEY,
	phone      TEXT NOT NULL,
	message_id TEXT NOT NULL,
	at         INTEGER NOT NULL
);
CREATE TABLE xmpp_chats (
	message_id TEXT PRIMARY KEY,
	jid        TEXT NOT NULL,
	stanza_id  TEXT NOT NULL,  -- the chat message's id ('' when it had none)
	receipt    INTEGER NOT NULL -- it asked for a XEP-0184 receipt
);
