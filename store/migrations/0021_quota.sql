-- Quotas: what each source had accepted and what each number was sent,
-- counted over sliding windows of an hour and a day (bridge/quota.go).
-- kind 'source': key is who sent (the audit log's who), n the SMS of one
-- send; kind 'number': key is the number (tel:+…), n = 1. Rows older
-- than a day are deleted as sends come in.
CREATE TABLE quota_counts (
	id INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	key TEXT NOT NULL,
	at INTEGER NOT NULL,
	n INTEGER NOT NULL,
	message_id TEXT NOT NULL
);
CREATE INDEX quota_counts_key ON quota_counts (kind, key, at, n);
CREATE INDEX quota_counts_at ON quota_counts (at);
