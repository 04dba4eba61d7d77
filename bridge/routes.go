package bridge

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/outpost-sms/outpost/store"
)

// Route is one rule applied to every inbound message, in order, after it
// was classified (a form? its keyword?): the config's [[route]]. It
// matches when every field given matches: Channel the message's channel,
// From a glob (path.Match) on the sender's number as received or its
// address ("tel:+…"), Modem the modem that received it, Keyword the first
// word of its text (case-insensitive, with or without the punctuation
// after it: "Help!" is HELP), Form its form id. A matching route
// adds a delivery to each address of To (none twice, and none a message
// already has), sends Reply back to the sender on the channel it came in
// on (only the first matching route with a Reply does), and keeps Tag on
// the message. Stop ends the evaluation. The default deliveries (Routes,
// FormRoutes) always happen. A sender gets at most Router.ReplyLimit
// replies an hour (two gateways that answer every SMS would text each
// other forever); past it the copies and tags still are.
type Route struct {
	Channel, From, Modem, Keyword, Form string
	To                                  []string
	Reply, Tag                          string
	Stop                                bool
}

// ReplyChannel is the channel of an automatic reply (Route.Reply).
const ReplyChannel = "route"

// Matches reports whether the route applies to m.
func (r Route) Matches(m *store.Message) bool {
	switch {
	case r.Channel != "" && r.Channel != m.Channel,
		r.Modem != "" && r.Modem != m.Modem,
		r.Form != "" && r.Form != m.FormID:
		return false
	}
	if r.From != "" {
		a, _ := path.Match(r.From, m.Peer)
		b, _ := path.Match(r.From, m.FromAddr)
		// Its canonical form too: a route from "+2547*" matches a
		// sender the network gave as 0712… (with [sms] country_code).
		canon := Canonical(m.FromAddr)
		c, _ := path.Match(r.From, canon)
		d, _ := path.Match(r.From, strings.TrimPrefix(canon, SchemeTel+":"))
		if !a && !b && !c && !d {
			return false
		}
	}
	if r.Keyword != "" {
		if m.Text == nil || m.FormID != "" {
			return false
		}
		w := strings.Fields(*m.Text)
		if len(w) == 0 || !strings.EqualFold(w[0], r.Keyword) && !strings.EqualFold(strings.TrimRightFunc(w[0], unicode.IsPunct), r.Keyword) {
			return false
		}
	}
	return true
}

// KeywordArg is what follows a keyword route's keyword in m's text
// ("JOIN FLOOD": "FLOOD"), white space around it trimmed; "" when the
// route has no keyword or does not match.
func (r Route) KeywordArg(m *store.Message) string {
	if r.Keyword == "" || m.Text == nil || !r.Matches(m) {
		return ""
	}
	text := strings.TrimSpace(*m.Text)
	i := strings.IndexFunc(text, unicode.IsSpace)
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(text[i:])
}

// replyText is the route's Reply for m, "{arg}" replaced by the keyword's
// argument (KeywordArg).
func (r Route) replyText(m *store.Message) string {
	if !strings.Contains(r.Reply, "{arg}") {
		return r.Reply
	}
	return strings.ReplaceAll(r.Reply, "{arg}", r.KeywordArg(m))
}

// matched is what the routes make of an inbound message: the routes that
// matched (numbered from 1) and the tags they put on it.
type matched struct {
	routes []int
	tags   []string
}

// match evaluates Rules on m, in order, until one with Stop matches.
func (h *Router) match(m *store.Message) matched {
	var out matched
	for i, r := range h.Rules {
		if !r.Matches(m) {
			continue
		}
		out.routes = append(out.routes, i+1)
		if r.Tag != "" && !slices.Contains(out.tags, r.Tag) {
			out.tags = append(out.tags, r.Tag)
		}
		if r.Stop {
			break
		}
	}
	return out
}

// applyRoutes creates, inside tx, the deliveries and the reply of the
// routes that matched m (already stored with its other deliveries): one
// delivery per address, none to a destination m already has, and one
// automatic reply at most. A reply that cannot be made (a sender with no
// address, a text the connector refuses) is noted in m's history and
// stops nothing.
func (h *Router) applyRoutes(tx *store.Tx, m *store.Message, mt matched) error {
	if len(mt.routes) == 0 {
		return nil
	}
	have := map[[2]string]bool{}
	ds, err := tx.Deliveries(m.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		have[[2]string{d.Connector, d.Recipient}] = true
	}
	replied := false
	for _, n := range mt.routes {
		r := h.Rules[n-1]
		for _, to := range r.To {
			name, recipient, err := h.ruleTarget(to)
			if err != nil {
				return fmt.Errorf("route %d: to %q: %v", n, to, err)
			}
			if have[[2]string{name, recipient}] {
				continue
			}
			have[[2]string{name, recipient}] = true
			d := &store.Delivery{MessageID: m.ID, Connector: name, Recipient: recipient}
			if err := tx.InsertDelivery(d, fmt.Sprintf("routed by route %d", n)); err != nil {
				return err
			}
			if err := h.enqueue(tx, h.connector(name), m, *d); err != nil {
				return err
			}
			tx.AfterCommit(func() { h.Wake(name) })
		}
		if r.Reply != "" && !replied {
			replied = true
			if err := h.reply(tx, m, n, r.replyText(m)); err != nil {
				return err
			}
		}
	}
	return nil
}

// reply stores, inside tx, route n's automatic reply to m: a send request
// to m's sender (channel ReplyChannel), its history naming the route and
// m. Only a store error is returned: a reply that cannot be made is noted
// in m's history.
func (h *Router) reply(tx *store.Tx, m *store.Message, n int, text string) error {
	fail := func(why error) error {
		return tx.AppendEvent(m.ID, 0, "no auto-reply", fmt.Sprintf("route %d: %v", n, why))
	}
	if m.FromAddr == "" {
		return fail(errors.New("the sender's address is not known"))
	}
	if why := h.automatic(tx, m, text); why != "" {
		return fail(errors.New(why))
	}
	req := SendRequest{To: []string{m.FromAddr}, Text: text, Source: ReplyChannel, From: fmt.Sprintf("route:%d", n),
		note: fmt.Sprintf("auto-reply of route %d to %s", n, m.ID), replyModem: m.Modem}
	out, write, err := h.prepare(req)
	if err != nil {
		return fail(err)
	}
	// Counted only when it can go out: a reply that cannot be made
	// takes no place in the sender's hour.
	window := h.replyWindow()
	if err := h.replies.seed(tx, h.ReplyLimit, window, h.Store.Elapsed()); err != nil {
		return err
	}
	if ok, first := h.replies.take(out.Peer, h.ReplyLimit, window, h.Store.Elapsed()); !ok {
		if first {
			h.Log.Warn("auto-replies to a sender held back: the routes still deliver its messages, but answer none of them for now",
				"from", m.FromAddr, "limit", h.ReplyLimit, "window", window.String(), "route", n, "msg_id", m.ID)
		}
		return fail(fmt.Errorf("%s already got %d auto-replies in the last %s (route_reply_limit)", m.FromAddr, h.ReplyLimit, windowText(window)))
	}
	if err := write(tx); err != nil {
		return err
	}
	return tx.AppendEvent(m.ID, 0, "auto-reply", fmt.Sprintf("route %d: %s to %s", n, out.ID, m.FromAddr))
}

// ruleTarget resolves an address of a route's To: a bare connector name
// ("mqtt", as in Routes), or an address by scheme (a phone number,
// mailto:…, webhook:NAME) to the connector that delivers to it. The error
// does not repeat the address.
func (h *Router) ruleTarget(to string) (name, recipient string, err error) {
	if !strings.Contains(to, ":") && h.connector(to) != nil {
		return to, "", nil
	}
	a, err := ParseAddress(to)
	if err != nil {
		return "", "", err
	}
	if a.Scheme == SchemeGroup || a.Scheme == SchemeTopic {
		return "", "", errors.New("a route names addresses, not a group or a topic (list its numbers)")
	}
	ts, err := h.resolve([]Address{a})
	if err != nil {
		return "", "", errors.New(strings.TrimPrefix(err.Error(), a.String()+": "))
	}
	return ts[0].conn.Name(), a.Value, nil
}

// checkRules says what is wrong with Rules: an address of To no
// registered connector delivers to, or a bad one, naming the route
// (numbered from 1, in the order of the config).
func (h *Router) checkRules() []error {
	var errs []error
	for i, r := range h.Rules {
		for _, to := range r.To {
			if _, _, err := h.ruleTarget(to); err != nil {
				errs = append(errs, fmt.Errorf("route %d: to %q: %v", i+1, to, err))
			}
		}
	}
	return errs
}

// ReplyWindow is the default time over which Router.ReplyLimit counts a
// sender's automatic replies.
const ReplyWindow = time.Hour

func (h *Router) replyWindow() time.Duration {
	if h.ReplyWindow > 0 {
		return h.ReplyWindow
	}
	return ReplyWindow
}

// windowText says a window as people do: "hour", "10m0s".
func windowText(w time.Duration) string {
	switch w {
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return w.String()
}

// automatic says why m must get no automatic reply ("" when it may): its
// sender is a short code or a service (notAnswerable), it opted out, or m
// is itself automatic: it repeats the reply it would get (an answering
// machine echoing our last answer back).
func (h *Router) automatic(tx *store.Tx, m *store.Message, reply string) string {
	if why := notAnswerable(m); why != "" {
		return why
	}
	if a, err := ParseAddress(m.FromAddr); err == nil {
		o, out, err := optOutOf(tx, a)
		if err == nil && out {
			return fmt.Sprintf("%s %s", a.Value, optOutNote(o))
		}
	}
	if m.Text != nil && repeats(*m.Text, reply) {
		return "the message repeats an automatic answer (an echo of an auto-reply): answering it would start a loop"
	}
	return ""
}

// repeats reports whether text holds reply as a whole (case and runs of
// white space aside; not inside a word: a reply "OK" is not repeated by
// "book").
func repeats(text, reply string) bool {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	text, reply = norm(text), norm(reply)
	if reply == "" {
		return false
	}
	word := func(s string, last bool) bool {
		if s == "" {
			return false
		}
		r := []rune(s)
		c := r[0]
		if last {
			c = r[len(r)-1]
		}
		return unicode.IsLetter(c) || unicode.IsDigit(c)
	}
	for i := 0; i+len(reply) <= len(text); {
		j := strings.Index(text[i:], reply)
		if j < 0 {
			return false
		}
		at := i + j
		if !word(text[:at], true) && !word(text[at+len(reply):], false) {
			return true
		}
		i = at + 1
	}
	return false
}

// maxReplySenders bounds the senders replyLimiter remembers; past it,
// those with no reply in the window are forgotten.
const maxReplySenders = 10000

// replyLimiter counts the automatic replies to each sender (the reply's
// peer) over the last ReplyWindow of elapsed (monotonic) time: a clock
// set back or forward while it runs neither resets nor freezes it. It
// starts from the replies stored in the last hour by the clock (a
// restart does not reset it either, unless the clock jumped while the
// daemon was down).
type replyLimiter struct {
	mu     sync.Mutex
	seeded bool
	sent   map[string][]time.Duration // elapsed times of the replies, oldest first
	warned map[string]bool            // held back since its window was last full
}

// seed counts, once, the replies stored in the last ReplyWindow (by the
// transaction's time) as sent that long before now.
func (l *replyLimiter) seed(tx *store.Tx, limit int, window, now time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seeded || limit <= 0 {
		return nil
	}
	wall := tx.Now()
	recent, err := tx.RecentSends(ReplyChannel, wall.Add(-window))
	if err != nil {
		return err
	}
	l.seeded = true
	if l.sent == nil {
		l.sent, l.warned = map[string][]time.Duration{}, map[string]bool{}
	}
	for peer, ts := range recent {
		for _, at := range ts {
			l.sent[peer] = append(l.sent[peer], now-max(wall.Sub(at), 0))
		}
	}
	return nil
}

// take reports whether a reply to sender may go out now (and counts it),
// and, when it may not, whether this is the first one held back since
// the sender's window filled.
func (l *replyLimiter) take(sender string, limit int, window, now time.Duration) (ok, first bool) {
	if limit <= 0 {
		return true, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent == nil {
		l.sent, l.warned = map[string][]time.Duration{}, map[string]bool{}
	}
	if len(l.sent) > maxReplySenders {
		for s, ts := range l.sent {
			if len(ts) == 0 || now-ts[len(ts)-1] >= window {
				delete(l.sent, s)
				delete(l.warned, s)
			}
		}
	}
	ts := l.sent[sender]
	for len(ts) > 0 && now-ts[0] >= window {
		ts = ts[1:]
	}
	if len(ts) >= limit {
		l.sent[sender] = ts
		first = !l.warned[sender]
		l.warned[sender] = true
		return false, first
	}
	delete(l.warned, sender)
	l.sent[sender] = append(ts, now)
	return true, false
}
