-- The subject of the mail a conversation answers: a phone's SMS answer is
-- mailed as "Re: <subject>", so mail clients thread it by subject too.
ALTER TABLE email_conversations ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE email_threads ADD COLUMN subject TEXT NOT NULL DEFAULT '';
