-- The tags the routes ([[route]] tag = …) put on an inbound message,
-- comma-separated in the order the routes matched ('' for none).
ALTER TABLE messages ADD COLUMN tags TEXT NOT NULL DEFAULT '';
