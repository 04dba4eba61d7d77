-- Where a message came from: the channel it came in on (sms, mqtt, http,
-- cli, hub, email, xmpp…), its sender's address when known (tel:+… for
-- an inbound SMS, mqtt:<client id>) and what it carries (text, data,
-- form, report). Messages stored before are filled in from what they
-- recorded: the source, the number of an inbound SMS, the form id.
ALTER TABLE messages ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN from_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT '';
UPDATE messages SET
    channel = source,
    from_addr = CASE
        WHEN direction = 'in' AND peer GLOB '[+0-9][0-9][0-9]*' AND NOT substr(peer, 2) GLOB '*[^0-9]*' THEN 'tel:' || peer
        ELSE '' END,
    kind = CASE
        WHEN form_id != '' THEN 'form'
        WHEN text IS NULL THEN 'data'
        ELSE 'text' END;
