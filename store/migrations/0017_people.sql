-- People and their choices: the numbers (or addresses) that opted out
-- (STOP, until START), the topics they subscribe to (JOIN/LEAVE, the
-- API), and every change of either, with the message or channel that
-- made it.
CREATE TABLE optouts (
	addr       TEXT PRIMARY KEY,          -- tel:+…
	at         INTEGER NOT NULL,          -- when (ms, the clock's)
	word       TEXT NOT NULL DEFAULT '',  -- the keyword (STOP, …) or '' by the API
	message_id TEXT NOT NULL DEFAULT '',  -- the inbound message that asked
	channel    TEXT NOT NULL DEFAULT '',  -- sms, email, http, cli, mqtt
	-- the last delivery id when it opted out: the deliveries up to it
	-- were created before (checked again when they go out), those after
	-- it were checked when they were created (whatever the clock did)
	seq        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE subscriptions (
	topic      TEXT NOT NULL,
	addr       TEXT NOT NULL,             -- tel:+…, mailto:…
	at         INTEGER NOT NULL,
	message_id TEXT NOT NULL DEFAULT '',
	channel    TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (topic, addr)
);
CREATE INDEX subscriptions_addr ON subscriptions (addr);
CREATE TABLE people_log (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	addr       TEXT NOT NULL,
	action     TEXT NOT NULL,             -- optout, optin, join, leave
	topic      TEXT NOT NULL DEFAULT '',
	message_id TEXT NOT NULL DEFAULT '',
	channel    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX people_log_addr ON people_log (addr, id);
