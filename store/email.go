package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Conversation is a phone that was mailed through the email connector:
// its SMS answers go to Email, threaded on LastMsgID, until ExpiresAt.
type Conversation struct {
	Phone     string
	Email     string
	LastMsgID string // the Message-ID of the last mail either way
	Refs      string // the References chain up to LastMsgID
	Subject   string // the subject of the last mail to the phone
	UpdatedAt time.Time
	ExpiresAt time.Time
}

// SetConversation stores c for its phone, replacing an earlier one (a
// phone answers the address that mailed it last). UpdatedAt is now.
func (tx *Tx) SetConversation(c Conversation) error {
	_, err := tx.exec(`INSERT INTO email_conversations (phone, email, last_msg_id, refs, subject, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (phone) DO UPDATE SET email = excluded.email, last_msg_id = excluded.last_msg_id, refs = excluded.refs,
		subject = excluded.subject, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
		c.Phone, c.Email, c.LastMsgID, c.Refs, c.Subject, ms(tx.now), ms(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store conversation: %w", err)
	}
	return nil
}

// Conversation reads the conversation of a phone that has not expired
// (by the transaction's time); ErrNotFound when there is none.
func (tx *Tx) Conversation(phone string) (Conversation, error) {
	c := Conversation{Phone: phone}
	var updated, expires int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT email, last_msg_id, refs, subject, updated_at, expires_at FROM email_conversations WHERE phone = ? AND expires_at > ?`,
		phone, ms(tx.now)).Scan(&c.Email, &c.LastMsgID, &c.Refs, &c.Subject, &updated, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("conversation with %s: %w", phone, ErrNotFound)
	}
	c.UpdatedAt, c.ExpiresAt = fromMS(updated), fromMS(expires)
	return c, err
}

// EmailThread is the threading of the mail one inbound message (or a
// notice of a failed SMS) is delivered as: its own Message-ID and the
// ones it answers. For a message that came by mail it is that mail: its
// Message-ID, References and subject.
type EmailThread struct {
	MailID    string
	InReplyTo string
	Refs      string
	Subject   string // the subject of the mail it answers ("": none); a notice's own
}

// SetEmailThread stores the threading of the mail message id goes out as.
func (tx *Tx) SetEmailThread(messageID string, t EmailThread) error {
	_, err := tx.exec(`INSERT OR REPLACE INTO email_threads (message_id, mail_id, in_reply_to, refs, subject) VALUES (?, ?, ?, ?, ?)`,
		messageID, t.MailID, t.InReplyTo, t.Refs, t.Subject)
	return err
}

// EmailThread reads what SetEmailThread stored; ErrNotFound when nothing.
func (tx *Tx) EmailThread(messageID string) (EmailThread, error) {
	var t EmailThread
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT mail_id, in_reply_to, refs, subject FROM email_threads WHERE message_id = ?`, messageID).Scan(&t.MailID, &t.InReplyTo, &t.Refs, &t.Subject)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("email thread of %s: %w", messageID, ErrNotFound)
	}
	return t, err
}
