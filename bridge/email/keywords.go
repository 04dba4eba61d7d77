package email

import (
	"errors"
	"net/mail"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/outpost-sms/outpost/store"
)

// KeywordsLocal is the local part of the address that takes people's
// keywords by mail: a mail to keywords@<domain> whose subject, or else
// first line, is STOP, START, JOIN <topic> or LEAVE <topic> (or a word
// the config adds) acts for its sender's address (mailto:…) as the same
// SMS does for a phone: subscribes it to a topic, opts it out of every
// mail from the gateway, and is confirmed to it by mail (with
// email.smtp).
const KeywordsLocal = "keywords"

// keywordMail stores a mail to keywords@<domain> as an inbound message
// from its sender, for the router's keywords (bridge.Router.people); the
// 250 comes after its commit. A mail with no keyword is refused (550).
func (s *session) keywordMail(msg *mail.Message, text string) error {
	line := strings.TrimSpace(subject(msg.Header.Get("Subject")))
	if !s.c.router.IsKeyword(line) {
		line, _, _ = strings.Cut(strings.TrimSpace(text), "\n")
		line = strings.TrimSpace(line)
	}
	if !s.c.router.IsKeyword(line) {
		return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "no keyword: write JOIN <topic>, LEAVE <topic>, STOP or START as the subject or the first line")
	}
	msgID := strings.TrimSpace(msg.Header.Get("Message-Id"))
	m := &store.Message{Peer: s.from, FromAddr: "mailto:" + s.from, Source: "email", Channel: "email", State: store.Complete, Text: &line}
	if msgID != "" {
		m.DedupKey = "email-keywords|" + s.from + "|" + msgID
	}
	detail := "mail to " + KeywordsLocal + "@ from " + s.from
	if msgID != "" {
		detail += ", Message-ID " + msgID
	}
	err := s.c.router.Store.Update(s.ctx, func(tx *store.Tx) error { return s.c.router.StoreInbound(tx, m, detail) })
	switch {
	case errors.Is(err, store.ErrDuplicate):
	case err != nil:
		s.c.opt.Log.Error("email: cannot store a keyword mail", "from", s.from, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "cannot store the message now, try again later: %v", err)
	}
	s.c.opt.Log.Info("email: keyword mail accepted", "msg_id", m.ID, "from", s.from, "keyword", line)
	return nil
}
