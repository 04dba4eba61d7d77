package xmpp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// noticeFrom starts the from_addr of a notice: "xmppnotice:<the id of
// the message it is about>". A notice is never noticed itself.
const noticeFrom = "xmppnotice:"

// Deliver implements bridge.Connector: it sends one chat message to
// d.Recipient and returns once the server has handled it (a ping sent
// behind it was answered). No connection, or one that ends first, is an
// outage: the message waits without using up an attempt.
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	to, _, err := splitJID(d.Recipient)
	if err != nil {
		return bridge.Outcome{}, bridge.Permanent(err)
	}
	// The stanza's id is the message's: a bounce the server sends back
	// for it names it.
	id := "sms-" + m.ID
	var stanza, what string
	err = c.router.Store.View(ctx, func(tx *store.Tx) error {
		stanza, what, err = c.render(tx, m, to, id)
		return err
	})
	if err != nil {
		return bridge.Outcome{}, err
	}
	s := c.current()
	if s == nil {
		return bridge.Outcome{}, bridge.Outage(errors.New("not connected to the XMPP server"))
	}
	if m.Direction == store.In {
		// ". text" answers it. Recorded before the chat goes out: the
		// user can see it, and answer, before the server's answer to
		// the ping behind it is back.
		if err := c.router.Store.Update(ctx, func(tx *store.Tx) error { return tx.SetXMPPLastShown(to, m.Peer, m.ID) }); err != nil {
			c.opt.Log.Warn("xmpp: cannot record the SMS shown to a user", "jid", to, "msg_id", m.ID, "err", err)
		}
	}
	if err := s.deliver(ctx, stanza, id, to); err != nil {
		var b bounced
		switch {
		case errors.As(err, &b):
			return bridge.Outcome{}, bridge.Permanent(err)
		case ctx.Err() != nil:
			return bridge.Outcome{}, err
		}
		return bridge.Outcome{}, bridge.Outage(err)
	}
	return bridge.Outcome{State: store.Delivered, Detail: "handed to the XMPP server for " + to + " as " + what}, nil
}

// render is the stanza (with id) that delivers m to jid, and what it is.
func (c *Connector) render(tx *store.Tx, m store.Message, jid, id string) (string, string, error) {
	if strings.HasPrefix(m.FromAddr, noticeFrom) {
		ch, err := tx.XMPPChat(m.ID)
		if err == nil && ch.Receipt && ch.StanzaID != "" {
			return receiptStanza(jid, id, ch.StanzaID), "a receipt", nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", "", err
		}
	}
	if m.Text == nil && m.Direction != store.In {
		return "", "", bridge.Permanent(fmt.Errorf("message %s has no text to chat", m.ID))
	}
	text := ""
	if m.Text != nil {
		text = *m.Text
	}
	if m.Direction == store.In {
		name, err := tx.ContactNameOf(m.Peer)
		if err != nil {
			return "", "", err
		}
		who := m.Peer
		if name != "" {
			who += " (" + name + ")"
		}
		switch {
		case m.FormID != "":
			text = fmt.Sprintf("[form %s; outpost show %s]", m.FormID, m.ID)
		case m.Text == nil:
			text = fmt.Sprintf("[%d bytes of data; outpost show %s]", len(m.Data), m.ID)
		}
		text = who + ": " + text
	}
	return chatStanza(jid, id, text), "a chat message", nil
}

// answer runs in the transaction that stores an inbound SMS: when its
// sender was last chatted to by a user (a conversation that has not
// expired), the SMS goes to that user.
func (c *Connector) answer(tx *store.Tx, m *store.Message) error {
	sms := c.router.ConnectorFor(bridge.SchemeTel)
	if m.Direction != store.In || sms == nil || m.Channel != sms.Name() {
		return nil
	}
	jid, err := tx.XMPPConversation(m.Peer)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ds, err := tx.Deliveries(m.ID)
	if err != nil {
		return err
	}
	// A contact's address stored before addresses were lower-cased
	// can differ in case alone.
	if slices.ContainsFunc(ds, func(d store.Delivery) bool { return d.Connector == c.Name() && bareOf(d.Recipient) == jid }) {
		return nil
	}
	d := &store.Delivery{MessageID: m.ID, Connector: c.Name(), Recipient: jid}
	if err := tx.InsertDelivery(d, "answer to "+jid+" (XMPP conversation)"); err != nil {
		return err
	}
	tx.AfterCommit(func() { c.router.Wake(c.Name()) })
	return nil
}

// maxNoticeLines is the most numbers of one send that each get their
// own line; a larger send gets one summary.
const maxNoticeLines = 10

// final reports whether a delivery state is an outcome the user hears of.
// Sent is not: a delivery report is asked for every SMS of a chat, and a
// summary waits for every number's.
func final(state string) bool {
	switch state {
	case store.Delivered, store.Failed, store.Expired, store.Cancelled:
		return true
	}
	return false
}

// noticeID is the id of the notice that message id's SMS to number
// reached state: one per message, number and state, whatever retries.
func noticeID(id, number, state string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + number + "\x00" + state))
	return "xn-" + hex.EncodeToString(sum[:12])
}

// notice runs in the transaction of every delivery state change: when an
// SMS sent from a chat is delivered or ends failed, expired or
// cancelled, the user who sent it is told, by a chat message that waits
// like any other while the server is away (a XEP-0184 receipt instead of
// a line for a delivered SMS to one number, where the chat asked for
// one).
func (c *Connector) notice(tx *store.Tx, ch bridge.StatusChange) error {
	switch ch.State {
	case store.Delivered, store.Failed, store.Expired, store.Cancelled:
	default:
		return nil
	}
	if sms := c.router.ConnectorFor(bridge.SchemeTel); sms == nil || ch.Connector != sms.Name() {
		return nil
	}
	m, err := tx.Message(ch.MessageID)
	if err != nil {
		return err
	}
	user, ok := strings.CutPrefix(m.FromAddr, "xmpp:")
	if m.Direction != store.Out || m.Channel != c.Name() || !ok {
		return nil
	}
	ds, err := tx.Deliveries(m.ID)
	if err != nil {
		return err
	}
	var sms []store.Delivery
	for _, d := range ds {
		if d.Connector == ch.Connector {
			sms = append(sms, d)
		}
	}
	id := noticeID(m.ID, ch.To, ch.State)
	text := fmt.Sprintf("%s: %s to %s", ch.State, m.ID, ch.To)
	if ch.State != store.Delivered {
		reason := oneLine(ch.Detail)
		if reason == "" {
			reason = "no reason given"
		}
		text = fmt.Sprintf("%s (%s): %s to %s", ch.State, reason, m.ID, ch.To)
	}
	if len(sms) > maxNoticeLines {
		// A line per number would flood the chat: one summary once
		// every number has its outcome.
		counts := map[string]int{}
		for _, d := range sms {
			if !final(d.State) {
				return nil
			}
			counts[d.State]++
		}
		id = noticeID(m.ID, "", "summary")
		var parts []string
		for _, st := range []string{store.Delivered, store.Failed, store.Expired, store.Cancelled} {
			if counts[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
			}
		}
		text = fmt.Sprintf("%s to %d numbers: %s (outpost show %s has each)", m.ID, len(sms), strings.Join(parts, ", "), m.ID)
	}
	switch _, err := tx.Message(id); {
	case err == nil:
		return nil // noticed already
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	req := bridge.SendRequest{ID: id, To: []string{"xmpp:" + user}, Text: text, Source: c.Name(), From: noticeFrom + m.ID}
	n, err := c.router.SubmitIn(tx, req, fmt.Sprintf("notice of %s: SMS to %s %s", m.ID, ch.To, ch.State))
	if errors.Is(err, bridge.ErrInvalid) {
		c.opt.Log.Warn("xmpp: cannot tell a user how their SMS went", "msg_id", m.ID, "to", ch.To, "user", user, "err", err)
		return tx.AppendEvent(m.ID, 0, c.Name(), fmt.Sprintf("no notice to %s of the SMS to %s: %v", user, ch.To, err))
	}
	if err != nil {
		return err
	}
	if ch.State == store.Delivered && len(sms) == 1 {
		chat, err := tx.XMPPChat(m.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if chat.Receipt && chat.StanzaID != "" {
			if err := tx.SetXMPPChat(n.ID, store.XMPPChat{JID: user, StanzaID: chat.StanzaID, Receipt: true}); err != nil {
				return err
			}
		}
	}
	return tx.AppendEvent(m.ID, 0, c.Name(), fmt.Sprintf("notice %s to %s: the SMS to %s %s", n.ID, user, ch.To, ch.State))
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
