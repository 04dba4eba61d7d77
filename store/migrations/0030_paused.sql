-- Modems and connectors paused by an operator (outpost pause): kept so a
-- restart does not send what someone stopped on purpose.
CREATE TABLE paused (
	name  TEXT PRIMARY KEY,
	kind  TEXT NOT NULL, -- modem or connector
	since INTEGER NOT NULL,
	by    TEXT NOT NULL
);
