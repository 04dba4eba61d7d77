-- Status reports that arrived before the part they are about was recorded:
-- the network can answer faster than the commit that follows +CMGS. They
-- wait here (committed, so the modem may delete them) until the part is.
CREATE TABLE orphan_reports (
	id          INTEGER PRIMARY KEY,
	modem       TEXT NOT NULL,
	mr          INTEGER NOT NULL,
	recipient   TEXT NOT NULL,
	status      INTEGER NOT NULL,
	received_at INTEGER NOT NULL
);
CREATE INDEX orphan_reports_mr ON orphan_reports (modem, mr);
