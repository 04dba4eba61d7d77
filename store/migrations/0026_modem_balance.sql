-- The last balance check of each modem's SIM (USSD): the amount read
-- (NULL when the answer held none), its currency, the network's text,
-- when, and whether it was below the modem's low_balance (an alert goes
-- once per crossing: when this turns on).
CREATE TABLE modem_balance (
	modem    TEXT PRIMARY KEY,
	amount   REAL,
	currency TEXT NOT NULL DEFAULT '',
	text     TEXT NOT NULL DEFAULT '',
	at       INTEGER NOT NULL,
	low      INTEGER NOT NULL DEFAULT 0
);
