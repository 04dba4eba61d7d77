-- The web console's users (outpost user add) and their login sessions.
-- A password is kept as its bcrypt hash; a session as the SHA-256 of its
-- cookie, so a copy of the database gives no way in.
CREATE TABLE users (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
	hash       TEXT PRIMARY KEY,
	user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_used  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user);
