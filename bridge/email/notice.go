package email

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// noticeFrom starts the from_addr of a notice: "notice:<the id of the
// message it is about>". A notice is mailed from Outpost's own address,
// never noticed itself.
const noticeFrom = "notice:"

// noticeID is the id of the notice of message id's SMS to number: one per
// message and number, whatever retries follow.
func noticeID(id, number string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + number))
	return "notice-" + hex.EncodeToString(sum[:16])
}

// isNotice reports whether m is a notice of a failed SMS.
func isNotice(m store.Message) bool { return strings.HasPrefix(m.FromAddr, noticeFrom) }

// notice runs in the transaction of every delivery state change: when an
// SMS of a mail (channel email, from mailto:…) ends failed or expired for
// a number, it queues one mail to the mail's sender (a message to
// mailto:<sender>, mailed through the relay as any other) that says which
// number, why, and the message's id, threaded on the mail. One per
// message and number (its id says which): a retry that fails again
// notices nothing more. Only SMS are noticed, so a notice that bounces
// (its mail failed) makes no other.
func (c *Connector) notice(tx *store.Tx, ch bridge.StatusChange) error {
	if ch.State != store.Failed && ch.State != store.Expired {
		return nil
	}
	if sms := c.router.ConnectorFor(bridge.SchemeTel); sms == nil || ch.Connector != sms.Name() {
		return nil
	}
	m, err := tx.Message(ch.MessageID)
	if err != nil {
		return err
	}
	sender, fromMail := strings.CutPrefix(m.FromAddr, "mailto:")
	if m.Direction != store.Out || m.Channel != "email" || !fromMail {
		return nil
	}
	id := noticeID(m.ID, ch.To)
	switch _, err := tx.Message(id); {
	case err == nil:
		return nil // noticed already
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	mail, err := tx.EmailThread(m.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	req := bridge.SendRequest{ID: id, To: []string{"mailto:" + sender}, Text: noticeText(m, ch), Source: "email", From: noticeFrom + m.ID}
	n, err := c.router.SubmitIn(tx, req, fmt.Sprintf("notice of %s: SMS to %s %s", m.ID, ch.To, ch.State))
	if errors.Is(err, bridge.ErrInvalid) {
		// It cannot be mailed (no relay…): the SMS's history says so,
		// and its state change goes on.
		c.opt.Log.Warn("email: cannot notice a failed SMS to its sender", "msg_id", m.ID, "to", ch.To, "sender", sender, "err", err)
		return tx.AppendEvent(m.ID, 0, "email", fmt.Sprintf("no notice to %s of the SMS to %s: %v", sender, ch.To, err))
	}
	if err != nil {
		return err
	}
	subj := fmt.Sprintf("SMS to %s %s", ch.To, ch.State)
	if s := stripRe(mail.Subject); s != "" {
		subj = fmt.Sprintf("Re: %s (%s)", s, subj)
	}
	th := store.EmailThread{MailID: fmt.Sprintf("<%s@%s>", n.ID, c.opt.Domain), InReplyTo: mail.MailID, Refs: mail.Refs, Subject: subj}
	if err := tx.SetEmailThread(n.ID, th); err != nil {
		return err
	}
	return tx.AppendEvent(m.ID, 0, "email", fmt.Sprintf("notice %s to %s: the SMS to %s %s", n.ID, sender, ch.To, ch.State))
}

// maxQuote bounds the text of the SMS a notice quotes, in characters.
const maxQuote = 160

// noticeText is what a notice says: which number, the reason from the
// history, the message's id and the start of its text.
func noticeText(m store.Message, ch bridge.StatusChange) string {
	what := "could not be delivered"
	if ch.State == store.Expired {
		what = "expired before it could be sent"
	}
	reason := oneLine(ch.Detail)
	if reason == "" {
		reason = "unknown"
	}
	text := ""
	if m.Text != nil {
		text = oneLine(*m.Text)
	}
	if rs := []rune(text); len(rs) > maxQuote {
		text = string(rs[:maxQuote]) + "…"
	}
	return fmt.Sprintf("Your SMS to %s %s.\n\nReason: %s\nMessage id: %s\nText: %s\n\nThis is an automatic notice from the SMS gateway; it is sent once for this number.\n",
		ch.To, what, reason, m.ID, text)
}

// oneLine is s on one line: control characters and runs of white space
// made one space.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)), " ")
}
