package bridge

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/outpost-sms/outpost/store"
)

// Address schemes. A connector declares the one it delivers to (Addressed);
// SchemeTel is the SMS connector's.
const (
	SchemeTel      = "tel"
	SchemeGroup    = "group"
	SchemeTopic    = "topic"
	SchemeMailto   = "mailto"
	SchemeXMPP     = "xmpp"
	SchemeWebhook  = "webhook"
	SchemeMQTT     = "mqtt"
	SchemeHub      = "hub"
	SchemeOpenRosa = "openrosa"
)

// Address is where a message goes or came from: a scheme and the address
// within it ("tel", "+15555550100"; "webhook", "crm"). The bare names
// mqtt, hub and openrosa have no Value.
type Address struct {
	Scheme string
	Value  string
}

// String is the address written out: "tel:+15555550100", "mqtt".
func (a Address) String() string {
	if a.Value == "" {
		return a.Scheme
	}
	return a.Scheme + ":" + a.Value
}

// Peer is how a send request's message lists the address among its
// recipients (store.Message.Peer): the bare number for tel (as stored
// before schemes), the whole address otherwise. Its delivery's Recipient
// is Value.
func (a Address) Peer() string {
	if a.Scheme == SchemeTel {
		return a.Value
	}
	return a.String()
}

// Addressed is implemented by connectors that deliver to addresses of one
// scheme (the SMS connector: "tel"). The router sends an address to the
// connector of its scheme; a delivery's Recipient is then the Value.
type Addressed interface {
	Scheme() string
}

// AddressValidator is implemented by connectors that check an address of
// their scheme (its Value, e.g. "crm" of "webhook:crm") before a message
// to it is stored.
type AddressValidator interface {
	ValidateAddress(value string) error
}

// ParseAddress reads and normalises an address: "tel:+15555550100" or a
// bare number ("+15555550100", "0712345678": tel, 3–20 digits after an
// optional "+", as the SMS connector checks them), "group:<name>",
// "mailto:<addr>", "xmpp:<jid>", "webhook:<name>", and the bare names
// "mqtt", "hub" and "openrosa" (which may name a client after a colon:
// "mqtt:<client id>"). The error names the address.
func ParseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Address{}, fmt.Errorf(`empty address: give a phone number (+15555550100), group:NAME, or an address such as mailto:ops@example.org`)
	}
	switch s {
	case SchemeMQTT, SchemeHub, SchemeOpenRosa:
		return Address{Scheme: s}, nil
	}
	if s[0] == '+' || s[0] == '(' || ('0' <= s[0] && s[0] <= '9') {
		return canonTel(s, s)
	}
	scheme, value, ok := strings.Cut(s, ":")
	if !ok {
		return Address{}, fmt.Errorf(`%q is not an address: give a phone number (+15555550100), tel:…, group:NAME, mailto:…, xmpp:…, webhook:NAME, mqtt, hub or openrosa`, s)
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case SchemeTel:
		return canonTel(s, value)
	case SchemeGroup, SchemeWebhook:
		if err := checkName(value); err != nil {
			return Address{}, fmt.Errorf("%s: %v", s, err)
		}
	case SchemeTopic:
		if err := checkName(value); err != nil {
			return Address{}, fmt.Errorf("%s: %v", s, err)
		}
		value = strings.ToLower(value)
	case SchemeMailto:
		a, err := mail.ParseAddress(value)
		if err != nil || a.Name != "" || strings.ContainsAny(value, "<>") {
			why := "give one plain address such as mailto:ops@example.org"
			if err != nil {
				why = err.Error() + ": " + why
			}
			return Address{}, fmt.Errorf("%s: not an email address (%s)", s, why)
		}
		// One form for comparisons (bans, opt-outs, topics, contacts):
		// every mail system in use treats the local part, as the DNS
		// the domain, case-insensitively.
		value = strings.ToLower(a.Address)
	case SchemeXMPP:
		if err := checkJID(value); err != nil {
			return Address{}, fmt.Errorf("%s: not a Jabber ID (%v)", s, err)
		}
		// One form for comparisons, as for mail: servers compare the
		// user and the domain without case (the resource keeps its).
		bare, res, hasRes := strings.Cut(value, "/")
		value = strings.ToLower(bare)
		if hasRes {
			value += "/" + res
		}
	case SchemeMQTT, SchemeHub, SchemeOpenRosa:
		if value == "" {
			return Address{}, fmt.Errorf("%s: give %q alone (nothing after the colon)", s, scheme)
		}
		if strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(value) > 256 {
			return Address{}, fmt.Errorf("%s: give a client id after %q (1–256 characters, no control characters), or %q alone", s, scheme+":", scheme)
		}
	default:
		return Address{}, fmt.Errorf("%s: unknown scheme %q (known: tel, group, topic, mailto, xmpp, webhook, mqtt, hub, openrosa)", s, scheme)
	}
	return Address{Scheme: scheme, Value: value}, nil
}

// parseTel checks a phone number as the SMS connector does (3–20 digits
// after an optional "+"); s is the address as given, for the error.
func parseTel(s, n string) (Address, error) {
	d := strings.TrimPrefix(n, "+")
	if len(d) < 3 || len(d) > 20 {
		return Address{}, fmt.Errorf("bad phone number: %q must have 3 to 20 digits", s)
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return Address{}, fmt.Errorf("bad phone number: %q may only contain digits after an optional '+' (found %q)", s, r)
		}
	}
	return Address{Scheme: SchemeTel, Value: n}, nil
}

// countryCode is the box's country calling code (SetCountryCode).
var countryCode atomic.Value

// SetCountryCode sets the box's country calling code ("254"; "": not
// known), by which a national number (a leading 0, then the national
// significant number) reads as the international one: 0712345678 is
// +254712345678. Set once at start, before any address is read.
func SetCountryCode(cc string) { countryCode.Store(strings.TrimPrefix(strings.TrimSpace(cc), "+")) }

// CountryCode is what SetCountryCode set.
func CountryCode() string {
	cc, _ := countryCode.Load().(string)
	return cc
}

// CanonicalPhone is the one form of a phone number every comparison uses
// (sends, opt-outs, bans, contacts, topics, routes' senders): "tel:" and
// the separators people write (spaces, '-', '.', parentheses) are taken
// off, a leading "00" is "+"; with a country code (SetCountryCode) a
// national number "0712345678" is "+254712345678"; a number of 8 digits
// or more without '+' or a leading 0 ("254712345678") is taken as the
// international one (and sent so); a shorter one is a short code and
// stays as it is, and so does a national number without a country code
// (both sent with type of number unknown: pdu's destination). "+0…" is refused: no country code starts with 0.
func CanonicalPhone(s string) (string, error) {
	a, err := canonTel(s, strings.TrimSpace(s))
	return a.Value, err
}

// canonTel reads the phone number n (s as given, for the error) in its
// canonical form (CanonicalPhone).
func canonTel(s, n string) (Address, error) {
	if len(n) > 4 && strings.EqualFold(n[:4], "tel:") {
		n = n[4:]
	}
	n = strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()\u00a0\t", r) {
			return -1
		}
		return r
	}, n)
	if strings.HasPrefix(n, "00") {
		n = "+" + n[2:]
	}
	a, err := parseTel(s, n)
	if err != nil {
		return a, err
	}
	v := a.Value
	switch cc := CountryCode(); {
	case strings.HasPrefix(v, "+0"):
		return Address{}, fmt.Errorf("bad phone number: %q: a country code never starts with 0 (give +<country code><number>, e.g. +254712345678)", s)
	case v[0] == '+':
	case v[0] == '0':
		if cc != "" {
			v = "+" + cc + v[1:]
		}
	case len(v) >= 8:
		v = "+" + v
	}
	return Address{Scheme: SchemeTel, Value: v}, nil
}

// Canonical is addr (a stored address such as a message's from_addr:
// "tel:0712345678", "mailto:Bad@Example.org") in the form comparisons
// use (ParseAddress); addr itself when it does not parse.
func Canonical(addr string) string {
	a, err := ParseAddress(addr)
	if err != nil {
		return addr
	}
	return a.String()
}

// checkName checks a group's or a webhook's name: what the config's names
// may be.
func checkName(name string) error {
	// Names are ASCII: they are parts of addresses (group:<name>,
	// group-<name>@<domain> in mail, where a letter outside ASCII is not
	// portable). The error names the character, not one of its bytes
	// ("wärd": 'ä' at 1, not 'Ã').
	i := 0
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '.', r == '-':
		case r == utf8.RuneError:
			return fmt.Errorf("the name is not valid UTF-8 (at character %d)", i)
		default:
			return fmt.Errorf("character %q at %d is not allowed in a name (only ASCII letters a-z and A-Z, digits, '_', '.', '-')", r, i)
		}
		i++
	}
	if name == "" || len(name) > 64 {
		return fmt.Errorf("a name must have 1 to 64 characters, not %d", len(name))
	}
	return nil
}

// checkJID checks a Jabber ID, [node@]domain[/resource], by its shape (RFC
// 7622: each part at most 1023 bytes; no white space or control
// characters in node and domain).
func checkJID(jid string) error {
	bare, resource, hasRes := strings.Cut(jid, "/")
	node, domain, hasNode := strings.Cut(bare, "@")
	if !hasNode {
		node, domain = "", bare
	}
	switch {
	case domain == "":
		return fmt.Errorf("the domain is missing: give user@example.org")
	case hasNode && node == "":
		return fmt.Errorf("the part before '@' is empty")
	case hasRes && resource == "":
		return fmt.Errorf("the resource after '/' is empty")
	case len(node) > 1023 || len(domain) > 1023 || len(resource) > 1023:
		return fmt.Errorf("each part may have at most 1023 bytes")
	case strings.ContainsFunc(node+domain, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(`"&'/:<>@`, r) }):
		return fmt.Errorf("white space, control characters and \"&'/:<>@ are not allowed in the user or the domain")
	case strings.ContainsFunc(resource, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("control characters are not allowed in the resource")
	}
	return nil
}

// schemeHints say what makes a connector deliver to a scheme, for the
// error that refuses an address no connector delivers to.
var schemeHints = map[string]string{
	SchemeTel:      "configure a [[modem]]",
	SchemeMailto:   "configure [email]",
	SchemeXMPP:     "configure [xmpp]",
	SchemeWebhook:  "configure [[webhook]]",
	SchemeMQTT:     "configure mqtt.listen or hub.url",
	SchemeOpenRosa: "configure xform.openrosa.url",
	SchemeHub:      "configure hub.url",
}

// ConnectorFor returns the connector that delivers to addresses of scheme
// (the first by name that declares it, see Addressed), or nil. A
// connector named "sms" that declares no scheme delivers to tel.
func (h *Router) ConnectorFor(scheme string) Connector {
	h.mu.Lock()
	defer h.mu.Unlock()
	var found Connector
	for name, c := range h.connectors {
		if a, ok := c.(Addressed); ok && a.Scheme() == scheme && (found == nil || name < found.Name()) {
			found = c
		}
	}
	if found == nil && scheme == SchemeTel {
		if c, ok := h.connectors["sms"]; ok {
			if _, declares := c.(Addressed); !declares {
				found = c
			}
		}
	}
	return found
}

// target is one destination of a message: the connector that delivers to
// its address.
type target struct {
	conn Connector
	addr Address
}

// resolve finds the connector of every address and has it check the
// address. A group is not an address a connector delivers to: expand it
// first.
func (h *Router) resolve(addrs []Address) ([]target, error) {
	byScheme := map[string]Connector{}
	out := make([]target, 0, len(addrs))
	for _, a := range addrs {
		c, ok := byScheme[a.Scheme]
		if !ok {
			c = h.ConnectorFor(a.Scheme)
			byScheme[a.Scheme] = c
		}
		if c == nil {
			msg := fmt.Sprintf("%s: no connector delivers to %s: addresses", a, a.Scheme)
			if hint := schemeHints[a.Scheme]; hint != "" {
				msg += " (" + hint + ")"
			}
			return nil, errors.New(msg)
		}
		if v, ok := c.(AddressValidator); ok {
			if err := v.ValidateAddress(a.Value); err != nil {
				return nil, fmt.Errorf("%s: %v", a, err)
			}
		}
		out = append(out, target{c, a})
	}
	return out, nil
}

// route resolves one entry of Routes or FormRoutes: a connector's name
// ("mqtt", as before schemes) or an address ("webhook:crm": the webhook
// connector, recipient "crm").
func (h *Router) route(r string) (connector, recipient string, err error) {
	if !strings.Contains(r, ":") {
		return r, "", nil
	}
	a, err := ParseAddress(r)
	if err != nil {
		return "", "", err
	}
	if a.Scheme == SchemeGroup {
		return "", "", fmt.Errorf("%s: a route names one address, not a group", r)
	}
	ts, err := h.resolve([]Address{a})
	if err != nil {
		return "", "", err
	}
	return ts[0].conn.Name(), a.Value, nil
}

// CheckRoutes says what is wrong with Routes, FormRoutes and Rules (the
// config's [[route]]): an address no registered connector delivers to, or
// a bad one. Call it once every connector is added: StoreInbound refuses a
// message it cannot route.
func (h *Router) CheckRoutes() error {
	var errs []error
	for _, r := range append(append([]string{}, h.Routes...), h.FormRoutes...) {
		if _, _, err := h.route(r); err != nil {
			errs = append(errs, fmt.Errorf("routes: %v", err))
		}
	}
	errs = append(errs, h.checkRules()...)
	return errors.Join(errs...)
}

// kindOf is what an inbound message carries: a form submission, data
// (8-bit, or a PDU kept raw) or text.
func kindOf(m *store.Message) string {
	switch {
	case m.FormID != "":
		return store.KindForm
	case m.Text == nil:
		return store.KindData
	}
	return store.KindText
}
