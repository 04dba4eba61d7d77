package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SetXMPPConversation records that user jid chatted to phone: the phone's
// SMS go to jid until expires (a phone answers the user who wrote last).
func (tx *Tx) SetXMPPConversation(phone, jid string, expires time.Time) error {
	_, err := tx.exec(`INSERT INTO xmpp_conversations (phone, jid, updated_at, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (phone) DO UPDATE SET jid = excluded.jid, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
		phone, jid, ms(tx.now), ms(expires))
	if err != nil {
		return fmt.Errorf("store xmpp conversation: %w", err)
	}
	return nil
}

// XMPPConversation is the user whose conversation with phone has not
// expired (by the transaction's time); ErrNotFound when none.
func (tx *Tx) XMPPConversation(phone string) (string, error) {
	var jid string
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT jid FROM xmpp_conversations WHERE phone = ? AND expires_at > ?`, phone, ms(tx.now)).Scan(&jid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("xmpp conversation with %s: %w", phone, ErrNotFound)
	}
	return jid, err
}

// SetXMPPLastShown records the SMS (its id and sender) last shown to jid.
func (tx *Tx) SetXMPPLastShown(jid, phone, messageID string) error {
	_, err := tx.exec(`INSERT INTO xmpp_last_shown (jid, phone, message_id, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (jid) DO UPDATE SET phone = excluded.phone, message_id = excluded.message_id, at = excluded.at`,
		jid, phone, messageID, ms(tx.now))
	return err
}

// XMPPLastShown is the sender and id of the SMS last shown to jid;
// ErrNotFound when none was.
func (tx *Tx) XMPPLastShown(jid string) (phone, messageID string, err error) {
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT phone, message_id FROM xmpp_last_shown WHERE jid = ?`, jid).Scan(&phone, &messageID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("no SMS shown to %s yet: %w", jid, ErrNotFound)
	}
	return phone, messageID, err
}

// XMPPChat is the chat message a send request came from.
type XMPPChat struct {
	JID      string
	StanzaID string
	Receipt  bool // the client asked for a XEP-0184 receipt
}

// SetXMPPChat records the chat message that message id came from.
func (tx *Tx) SetXMPPChat(messageID string, c XMPPChat) error {
	_, err := tx.exec(`INSERT OR REPLACE INTO xmpp_chats (message_id, jid, stanza_id, receipt) VALUES (?, ?, ?, ?)`,
		messageID, c.JID, c.StanzaID, c.Receipt)
	return err
}

// XMPPChat reads what SetXMPPChat stored; ErrNotFound when nothing.
func (tx *Tx) XMPPChat(messageID string) (XMPPChat, error) {
	var c XMPPChat
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT jid, stanza_id, receipt FROM xmpp_chats WHERE message_id = ?`, messageID).Scan(&c.JID, &c.StanzaID, &c.Receipt)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("xmpp chat of %s: %w", messageID, ErrNotFound)
	}
	return c, err
}

// ContactNameOf is the name of the contact whose number phone is, or ""
// when it is no contact's.
func (tx *Tx) ContactNameOf(phone string) (string, error) {
	var name string
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT c.name FROM contact_phones p JOIN contacts c ON c.id = p.contact_id WHERE p.phone = ?`, phone).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}
