-- API tokens for the HTTP API on TCP (outpost token add): only the
-- SHA-256 of each token is kept, so a copy of the database does not
-- give access.
CREATE TABLE api_tokens (
	name       TEXT PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL, -- 0: never
	last_used  INTEGER NOT NULL  -- 0: never
);
