-- Samples of each modem's radio over time (outpost modems): written in
-- batches, one row per modem every few minutes and on changes, pruned
-- after a week, so the SD card sees few writes.
CREATE TABLE modem_samples (
	modem        TEXT NOT NULL,
	at           INTEGER NOT NULL,
	state        TEXT NOT NULL,
	signal       INTEGER NOT NULL, -- +CSQ rssi 0-31, 99 unknown
	registration TEXT NOT NULL,
	operator     TEXT NOT NULL,
	network      TEXT NOT NULL
);
CREATE INDEX modem_samples_at ON modem_samples (modem, at);
