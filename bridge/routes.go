package bridge

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
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
// FormRoutes) always happen.
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
		if !a && !b {
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
			if err := h.reply(tx, m, n, r.Reply); err != nil {
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
	req := SendRequest{To: []string{m.FromAddr}, Text: text, Source: ReplyChannel, From: fmt.Sprintf("route:%d", n),
		note: fmt.Sprintf("auto-reply of route %d to %s", n, m.ID)}
	out, write, err := h.prepare(req)
	if err != nil {
		return fail(err)
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
	if a.Scheme == SchemeGroup {
		return "", "", errors.New("a route names addresses, not a group (list its numbers)")
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
