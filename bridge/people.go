package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/outpost-sms/outpost/store"
)

// People: what the people who text the gateway asked for. A number that
// sent STOP (or another opt-out word) gets nothing more until it sends
// START: no group, topic or automatic message reaches it, and a send
// naming it is refused unless it answers that person's own message
// (SendRequest.InReplyTo). JOIN <topic> and LEAVE <topic> subscribe a
// number to a topic and take it off; a send to "topic:<name>" goes to
// every subscriber. Every change is recorded (store.PeopleChange) and
// confirmed once to the person; a repeat (a second STOP, a JOIN of a
// topic already joined) changes nothing and gets no answer.

// StopWords are the opt-out words always recognised, whatever the
// config adds: the whole text is the word (case-insensitive, punctuation
// around it ignored), so "Cancel my appointment" is not an opt-out.
var StopWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}

// StartWords are the opt-in words always recognised.
var StartWords = []string{"START", "UNSTOP"}

// JoinWords and LeaveWords are the subscription words always recognised,
// followed by the topic ("JOIN FLOOD").
var (
	JoinWords  = []string{"JOIN"}
	LeaveWords = []string{"LEAVE"}
)

// KeywordSet is one language's keywords and the confirmations sent in it:
// a person who sent INGIA gets the confirmation of the set INGIA is in.
// In the texts, {topic} is the topic.
type KeywordSet struct {
	Name                                         string
	Stop, Start, Join, Leave                     []string
	StopReply, StartReply, JoinReply, LeaveReply string
}

// PeopleChannel is the channel of a confirmation (the answer to STOP,
// START, JOIN, LEAVE).
const PeopleChannel = "keyword"

// ErrOptedOut marks a send refused because a recipient opted out; it is
// also ErrInvalid.
var ErrOptedOut = errors.New("opted out")

type optedOutError struct{ msg string }

func (e optedOutError) Error() string { return ErrInvalid.Error() + ": " + e.msg }
func (e optedOutError) Is(target error) bool {
	return target == ErrInvalid || target == ErrOptedOut
}

// keyword actions
const (
	kwStop  = "stop"
	kwStart = "start"
	kwJoin  = "join"
	kwLeave = "leave"
)

// keywordWords are the words of a text as a keyword is read: fullwidth
// letters (ＳＴＯＰ, as some phones' keyboards type them) folded to ASCII,
// punctuation, symbols and emoji around each word taken off, and what is
// only those ("🙏", "!!") left out.
func keywordWords(text string) []string {
	text = strings.Map(func(r rune) rune {
		switch {
		case 0xff01 <= r && r <= 0xff5e: // fullwidth ASCII
			return r - 0xfee0
		case r == 0x3000: // ideographic space
			return ' '
		}
		return r
	}, text)
	noise := func(r rune) bool {
		return unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf)
	}
	var out []string
	for _, f := range strings.Fields(text) {
		if w := strings.TrimFunc(f, noise); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// keyword finds what a text asks (stop, start, join, leave), the set of
// the word it used, and the topic of a join or leave. STOP and START are
// the whole text, but for emoji and punctuation and the word repeated
// ("stop stop", "STOP 🙏"); JOIN and LEAVE are followed by exactly one
// topic.
func (h *Router) keyword(text string) (action string, set KeywordSet, word, topic string) {
	fields := keywordWords(text)
	if len(fields) > 1 && !slices.ContainsFunc(fields, func(f string) bool { return !strings.EqualFold(f, fields[0]) }) {
		fields = fields[:1] // one word repeated
	}
	if len(fields) == 0 || len(fields) > 2 {
		return "", set, "", ""
	}
	clean := func(s string) string { return strings.TrimFunc(s, unicode.IsPunct) }
	word = strings.ToUpper(fields[0])
	sets := h.Keywords
	if len(sets) == 0 {
		sets = []KeywordSet{{}}
	}
	has := func(list []string, builtin []string, first bool) bool {
		if first && slices.Contains(builtin, word) {
			return true
		}
		return slices.ContainsFunc(list, func(w string) bool { return strings.EqualFold(w, word) })
	}
	for i, s := range sets {
		switch {
		case len(fields) == 1 && has(s.Stop, StopWords, i == 0):
			return kwStop, s, word, ""
		case len(fields) == 1 && has(s.Start, StartWords, i == 0):
			return kwStart, s, word, ""
		case len(fields) == 2 && has(s.Join, JoinWords, i == 0):
			return kwJoin, s, word, strings.ToLower(clean(fields[1]))
		case len(fields) == 2 && has(s.Leave, LeaveWords, i == 0):
			return kwLeave, s, word, strings.ToLower(clean(fields[1]))
		}
	}
	return "", set, "", ""
}

// IsKeyword reports whether text is one of Keywords' (STOP, START, JOIN
// <topic>, LEAVE <topic>, in any configured language).
func (h *Router) IsKeyword(text string) bool {
	action, _, _, _ := h.keyword(text)
	return action != ""
}

// people acts, inside tx, on an inbound message that is a keyword of
// Keywords (STOP, START, JOIN <topic>, LEAVE <topic>) from a phone (or
// a mail to keywords@<email domain>, from its sender): it
// records the change and confirms it to the sender once. Called by
// StoreInbound once m is stored.
func (h *Router) people(tx *store.Tx, m *store.Message) error {
	if m.Text == nil || m.FormID != "" || !strings.HasPrefix(m.FromAddr, SchemeTel+":") && !strings.HasPrefix(m.FromAddr, SchemeMailto+":") {
		return nil
	}
	action, set, word, topic := h.keyword(*m.Text)
	if action == "" {
		return nil
	}
	// The sender's canonical form: a STOP from 0712… opts out +254712…
	// (with [sms] country_code), a mail's sender in lower case.
	addr := Canonical(m.FromAddr)
	var changed bool
	var err error
	var text, what string
	switch action {
	case kwStop:
		changed, err = tx.SetOptOut(store.OptOut{Addr: addr, Word: word, MessageID: m.ID, Channel: m.Channel})
		text, what = set.StopReply, fmt.Sprintf("%s opted out (%s)", addr, word)
	case kwStart:
		changed, err = tx.ClearOptOut(addr, m.ID, m.Channel)
		text, what = set.StartReply, fmt.Sprintf("%s opted in again (%s)", addr, word)
	case kwJoin, kwLeave:
		if cerr := checkName(topic); cerr != nil {
			return tx.AppendEvent(m.ID, 0, "keyword", fmt.Sprintf("%s %q: not a topic name (%v): nothing changed", word, topic, cerr))
		}
		if action == kwJoin {
			changed, err = tx.Subscribe(store.Subscription{Topic: topic, Addr: addr, MessageID: m.ID, Channel: m.Channel})
			text, what = set.JoinReply, fmt.Sprintf("%s joined topic %s (%s)", addr, topic, word)
		} else {
			changed, err = tx.Unsubscribe(topic, addr, m.ID, m.Channel)
			text, what = set.LeaveReply, fmt.Sprintf("%s left topic %s (%s)", addr, topic, word)
		}
	}
	if err != nil {
		return err
	}
	if !changed {
		return tx.AppendEvent(m.ID, 0, "keyword", fmt.Sprintf("%s: no change (already so): no confirmation", what))
	}
	if err := tx.AppendEvent(m.ID, 0, "keyword", what); err != nil {
		return err
	}
	op := map[string]string{kwStop: "optout-add", kwStart: "optout-remove", kwJoin: "topic-subscribe", kwLeave: "topic-unsubscribe"}[action]
	target := strings.TrimSpace(addr + " " + topic)
	if err := h.audit(tx, store.AuditEntry{Who: addr, Channel: m.Channel, Op: op, Target: target, Detail: word + " in message " + m.ID}); err != nil {
		return err
	}
	text = strings.ReplaceAll(text, "{topic}", topic)
	if text == "" {
		return nil
	}
	if why := notAnswerable(m); why != "" {
		return tx.AppendEvent(m.ID, 0, "no confirmation", why)
	}
	req := SendRequest{To: []string{addr}, Text: text, Source: PeopleChannel, From: "keyword:" + word,
		note: fmt.Sprintf("confirmation of %s to %s", word, m.ID), confirmStop: action == kwStop}
	out, write, err := h.prepare(req)
	if err == nil {
		err = write(tx)
	}
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return tx.AppendEvent(m.ID, 0, "no confirmation", err.Error())
		}
		return err
	}
	return tx.AppendEvent(m.ID, 0, "confirmation", fmt.Sprintf("%s to %s", out.ID, addr))
}

// notAnswerable says why no automatic message may answer m ("" when one
// may): a sender that is not a full international number (+ and at least
// 8 digits: a short code, a service, a network's own number) is most
// likely a machine, and answering a machine is how loops start.
func notAnswerable(m *store.Message) string {
	a, err := ParseAddress(m.FromAddr)
	if err != nil || a.Scheme != SchemeTel {
		return ""
	}
	if !strings.HasPrefix(a.Value, "+") || len(a.Value) < 9 {
		return fmt.Sprintf("%s is not a full international number (a short code or a service): no automatic answer", a.Value)
	}
	return ""
}

// optOutOf returns the opt-out of a tel: or mailto: address, if it has
// one.
func optOutOf(tx *store.Tx, a Address) (store.OptOut, bool, error) {
	if a.Scheme != SchemeTel && a.Scheme != SchemeMailto {
		return store.OptOut{}, false, nil
	}
	return tx.GetOptOut(a.String())
}

func optOutNote(o store.OptOut) string {
	how := o.Word
	if how == "" {
		how = "by " + o.Channel
	}
	return fmt.Sprintf("opted out (%s on %s)", how, o.At.UTC().Format(time.RFC3339))
}

// applyOptOuts is the opt-out check of every send, run inside the
// transaction that stores it: it returns the targets that may be sent to.
// A number that opted out is skipped when a group or a topic brought it
// (the message's history says so); named directly (direct) it refuses
// the whole request (ErrOptedOut) unless the request answers that
// number's own inbound message (InReplyTo). The confirmation of a STOP
// goes to the number that just opted out.
func (h *Router) applyOptOuts(tx *store.Tx, req SendRequest, direct map[Address]bool, targets []target) (kept []target, skipped []string, err error) {
	for _, t := range targets {
		o, out, err := optOutOf(tx, t.addr)
		if err != nil {
			return nil, nil, err
		}
		if !out || req.confirmStop {
			kept = append(kept, t)
			continue
		}
		if !direct[t.addr] {
			skipped = append(skipped, fmt.Sprintf("%s skipped: %s", t.addr.Value, optOutNote(o)))
			continue
		}
		if req.InReplyTo == "" {
			return nil, nil, optedOutError{fmt.Sprintf(`%s %s: nothing may be sent to it until it sends START, except an answer to its own message (give "in_reply_to": the id of its inbound message)`,
				t.addr.Value, optOutNote(o))}
		}
		in, err := tx.Message(req.InReplyTo)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, nil, optedOutError{fmt.Sprintf(`%s %s, and "in_reply_to" %q is no message of this gateway`, t.addr.Value, optOutNote(o), req.InReplyTo)}
		case err != nil:
			return nil, nil, err
		case in.Direction != store.In || Canonical(in.FromAddr) != t.addr.String():
			return nil, nil, optedOutError{fmt.Sprintf(`%s %s, and "in_reply_to" %q is not a message from it`, t.addr.Value, optOutNote(o), req.InReplyTo)}
		}
		kept = append(kept, t)
	}
	return kept, skipped, nil
}

// noneLeft is the error of a send none of whose recipients is left once
// the banned (applyBans) and the opted-out (applyOptOuts) are skipped,
// naming each with its reason; nil when some are left.
func noneLeft(kept []target, banned, optedOut []string) error {
	switch {
	case len(kept) > 0 || len(banned)+len(optedOut) == 0:
		return nil
	case len(optedOut) == 0:
		return bannedError{"every recipient is banned, nothing to send: " + strings.Join(banned, "; ")}
	case len(banned) == 0:
		return optedOutError{"every recipient opted out, nothing to send: " + strings.Join(optedOut, "; ")}
	}
	return optedOutError{fmt.Sprintf("every recipient is banned (%d) or opted out (%d), nothing to send: %s",
		len(banned), len(optedOut), strings.Join(append(slices.Clone(banned), optedOut...), "; "))}
}

// directRecipients are the tel: and mailto: addresses a request names
// itself (not through a group or a topic).
func directRecipients(to []string) map[Address]bool {
	out := map[Address]bool{}
	for _, s := range to {
		if a, err := ParseAddress(s); err == nil && (a.Scheme == SchemeTel || a.Scheme == SchemeMailto) {
			out[a] = true
		}
	}
	return out
}

// topicMembers reads the subscribers of a topic, and what the send's
// history says of it. A topic with none is an error.
func (h *Router) topicMembers(topic string) ([]Address, string, error) {
	if h.Store == nil {
		return nil, "", fmt.Errorf("topic %q: no store", topic)
	}
	var subs []store.Subscription
	err := h.Store.View(context.Background(), func(tx *store.Tx) (err error) {
		subs, err = tx.Subscriptions(topic)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if len(subs) == 0 {
		return nil, "", fmt.Errorf("topic %q has no subscribers (JOIN %s by SMS, or outpost topic subscribe)", topic, topic)
	}
	out := make([]Address, len(subs))
	for i, s := range subs {
		if out[i], err = ParseAddress(s.Addr); err != nil {
			return nil, "", fmt.Errorf("topic %q: %v", topic, err)
		}
	}
	return out, fmt.Sprintf("topic %s: %d subscribers", topic, len(subs)), nil
}

// optedOutSince is the ban and opt-out check of a delivery about to go
// out: a Permanent error when its recipient is banned, or opted out after
// the delivery was created (a broadcast still in the queue, a scheduled
// // send, a retry), nil otherwise. One created after the opt-out was
// checked then (a reply to the person's own message, the STOP's
// confirmation). "After" is by
// the deliveries' ids, not by the clock, which may jump.
func (h *Router) optedOutSince(tx *store.Tx, m store.Message, d store.Delivery) error {
	scheme := SchemeTel
	if c := h.connector(d.Connector); c != nil {
		if a, ok := c.(Addressed); ok {
			scheme = a.Scheme()
		}
	}
	if scheme != SchemeTel && scheme != SchemeMailto || d.Recipient == "" {
		return nil
	}
	addr := Canonical(scheme + ":" + d.Recipient)
	// A ban stops whatever is still queued for the address, whenever it
	// was stored and whatever it is (a send, a copy of an inbound
	// message): nothing is ever sent to a banned address.
	b, banned, err := tx.GetBan(addr)
	if err != nil {
		return err
	}
	if banned {
		return Permanent(fmt.Errorf("%s %s: not sent", d.Recipient, banNote(b)))
	}
	if m.Direction != store.Out {
		return nil
	}
	o, out, err := tx.GetOptOut(addr)
	if err != nil || !out || d.ID > o.Seq {
		return err
	}
	return Permanent(fmt.Errorf("%s %s after this message was stored: not sent", d.Recipient, optOutNote(o)))
}
