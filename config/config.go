// Package config owns Outpost's TOML configuration: the defaults that run
// with no file at all, a strict loader that rejects unknown keys, and
// validation that reports every problem at once with its field path.
//
// It imports nothing of Outpost's and does no I/O beyond reading the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Config is the whole daemon configuration.
type Config struct {
	GatewayID string  `toml:"gateway_id"`
	DataDir   string  `toml:"data_dir"`
	LogLevel  string  `toml:"log_level"` // trace, debug, info, warn, error
	MQTT      MQTT    `toml:"mqtt"`
	SMS       SMS     `toml:"sms"`
	XForm     XForm   `toml:"xform"`
	Hub       Hub     `toml:"hub"`
	Modems    []Modem `toml:"modem"`
	Email     Email   `toml:"email"`
	XMPP      XMPP    `toml:"xmpp"`
	// Webhooks are HTTP receivers of Outpost's events ([[webhook]]).
	Webhooks []Webhook `toml:"webhook"`
	// Routes are the rules applied to every inbound message, in order
	// ([[route]]): copies to more addresses, an automatic reply, a tag.
	Routes []Route `toml:"route"`
	// RouteReplyLimit bounds the routes' automatic replies to one sender
	// in an hour (0: no bound): two gateways that answer every SMS would
	// otherwise text each other forever.
	RouteReplyLimit int `toml:"route_reply_limit"`
	// RouteReplyWindow is the time over which RouteReplyLimit counts.
	RouteReplyWindow Duration `toml:"route_reply_window"`
	// Keywords are the words people text to opt out, opt in, join and
	// leave topics, and the confirmations they get.
	Keywords Keywords `toml:"keywords"`
	// Groups are named lists of phone numbers; a send request to
	// "group:<name>" goes to each of them.
	Groups map[string][]string `toml:"groups"`
	// SimulatedByDefault is set when the file lists no [[modem]]: the
	// default simulated modem runs, which a file meant for the field
	// should say out loud.
	SimulatedByDefault bool `toml:"-"`
	// Retention is how long messages and their history are kept.
	Retention Retention `toml:"retention"`
	// Quota bounds sends per source and per number, and holds them in
	// the quiet hours (quota.go).
	Quota Quota `toml:"quota"`
	// HTTP is the HTTP API on TCP, with tokens ([http]).
	HTTP HTTP `toml:"http"`
}

// HTTP serves the API on a TCP address (empty: off, the default): every
// request needs a token (outpost token add) but /healthz and /readyz.
// With TLSCert and TLSKey (PEM files) it is HTTPS.
type HTTP struct {
	Listen  string `toml:"listen"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// SessionIdle ends a web console session unused this long (0: 12h).
	SessionIdle Duration `toml:"session_idle"`
}

// validate reports the problems of [http].
func (h HTTP) validate(bad func(field string, value any, why string)) {
	if h.Listen != "" {
		if _, _, err := net.SplitHostPort(h.Listen); err != nil || !validAddr(h.Listen) {
			bad("http.listen", h.Listen, "must be host:port with a port 0–65535 (empty: no HTTP API on TCP)")
		}
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		bad("http.tls_cert/tls_key", h.TLSCert, "HTTPS needs a certificate and its key (PEM files); give both or neither")
	}
	if h.TLSCert != "" && h.Listen == "" {
		bad("http.tls_cert", h.TLSCert, "is set but http.listen is empty: give http.listen too")
	}
	if h.SessionIdle.Duration < 0 || (h.SessionIdle.Duration > 0 && h.SessionIdle.Duration < time.Minute) {
		bad("http.session_idle", h.SessionIdle.Duration, "must be at least 1m (0: 12h)")
	}
}

// Retention bounds how long finished messages ([retention] messages),
// the history of finished messages (events) and the audit log (audit)
// are kept; 0 keeps them.
type Retention struct {
	Messages Duration `toml:"messages"`
	Events   Duration `toml:"events"`
	Audit    Duration `toml:"audit"`
}

// validate reports the problems of [retention].
func (r Retention) validate(bad func(field string, value any, why string)) {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"retention.messages", r.Messages.Duration}, {"retention.events", r.Events.Duration}, {"retention.audit", r.Audit.Duration}} {
		if f.d < 0 || f.d > 0 && f.d < time.Hour {
			bad(f.name, f.d.String(), "must be 0 (keep them) or at least 1h (default 8760h, one year)")
		}
	}
}

// Hub configures the link to the central hub (an MQTT broker).
type Hub struct {
	// URL is tcp://host:port (or ssl://…); empty turns the link off.
	URL      string `toml:"url"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	// ClientID defaults to the gateway id.
	ClientID  string   `toml:"client_id"`
	KeepAlive Duration `toml:"keepalive"`
	// CAFile verifies the hub's certificate (ssl:// URLs); CertFile and
	// KeyFile are this gateway's client certificate, if the hub asks.
	CAFile   string `toml:"ca_file"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// Window is how many messages may be sent to the hub and not yet
	// deleted from the queue: what a cut or a crash sends again (1:
	// strict order).
	Window int `toml:"window"`
	// Forward lists local topics whose messages go to the hub.
	Forward []Forward `toml:"forward"`
	// Subscribe lists hub topics (under Prefix there) whose messages are
	// published on the local broker.
	Subscribe []Forward `toml:"subscribe"`
	// MaxMessages, MaxBytes and MaxAge bound the queue to the hub (0: no
	// bound); WhenFull is "drop_oldest" or "refuse" (publishers get a
	// reason: an MQTT 5 reason code, and a message on hub/refused).
	MaxMessages int64    `toml:"max_messages"`
	MaxBytes    int64    `toml:"max_bytes"`
	MaxAge      Duration `toml:"max_age"`
	WhenFull    string   `toml:"when_full"`
}

// Email configures the email connector: an SMTP server that turns mail to
// <number>@<domain> from allowed senders into SMS, and the relay that
// carries the SMS answers back to them as email.
type Email struct {
	// Listen is the SMTP server's host:port; empty: no mail comes in.
	Listen string `toml:"listen"`
	// Domain is the mail domain of the phones (<number>@<domain>), and
	// the one replies come from.
	Domain string `toml:"domain"`
	// Allow lists the senders taken: "ops@ngo.org", or "*@example.org".
	Allow []string `toml:"allow"`
	// MaxParts bounds the SMS parts one mail may become (default 3).
	MaxParts int `toml:"max_parts"`
	// TLSCert and TLSKey (PEM) make the SMTP server offer STARTTLS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Accounts, when set, must AUTH (PLAIN, over TLS unless the server
	// listens on loopback) before they send; Allow still applies to the
	// sender. Like [[mqtt.user]] (outpost passwd); user and password
	// below are the relay's.
	Accounts []MQTTUser `toml:"account"`
	// SMTP is the relay the SMS answers go out through: smtp://host:port
	// (STARTTLS when offered; RequireTLS refuses to go on without it) or
	// smtps://host:port (implicit TLS). Empty: no mail goes out.
	SMTP       string `toml:"smtp"`
	User       string `toml:"user"`
	Password   string `toml:"password"`
	RequireTLS bool   `toml:"require_tls"`
	// CAFile verifies the relay's certificate (default: the system's).
	CAFile string `toml:"ca_file"`
	// ConversationTTL is how long after its last mail or SMS a phone's
	// answers still go to the address that mailed it (default 7 days).
	ConversationTTL Duration `toml:"conversation_ttl"`
	// Subject is what a mail's subject does to its SMS: "ignore" (not
	// sent, the default) or "prefix" (its own first line).
	Subject string `toml:"subject"`
	// SubjectTemplate is the subject of a phone's SMS mailed when it
	// answers no mail with a subject (default "SMS from {from}"); see
	// SubjectPlaceholders.
	SubjectTemplate string `toml:"subject_template"`
}

// XMPP configures the XMPP connector: Outpost logs in to an XMPP server
// as an account of its own; the users chat with it to send SMS, get the
// phones' answers, and (admins) run the box.
type XMPP struct {
	// JID and Password are Outpost's account ("": no XMPP).
	JID      string `toml:"jid"`
	Password string `toml:"password"`
	// Server is host:port (default: the JID's domain, by its SRV record,
	// else port 5222).
	Server string `toml:"server"`
	// DirectTLS connects with TLS at once (port 5223) instead of
	// STARTTLS. Either way the certificate is checked for the domain.
	DirectTLS bool `toml:"direct_tls"`
	// CAFile is the CA that signed a private server's certificate.
	CAFile string `toml:"ca_file"`
	// Users may chat with Outpost ([[xmpp.user]]).
	Users []XMPPUser `toml:"user"`
	// MaxParts is the SMS parts a chat may take before Outpost asks to
	// confirm it (default 3).
	MaxParts int `toml:"max_parts"`
	// ConversationTTL is how long a phone's SMS go to the user who last
	// chatted to it (default 7 days).
	ConversationTTL Duration `toml:"conversation_ttl"`
	// ReconnectMax caps the wait between connection attempts (default 1m).
	ReconnectMax Duration `toml:"reconnect_max"`
	// PingEvery is how often an idle connection is checked (default 1m).
	PingEvery Duration `toml:"ping_every"`
}

// XMPPUser is one account allowed to chat with Outpost.
type XMPPUser struct {
	JID  string `toml:"jid"`
	Role string `toml:"role"` // user (send and reply) or admin (also run the box)
}

// SubjectPlaceholders are what email.subject_template may hold: {from}
// and {number} are the phone's number, {modem} the id of the modem the
// SMS came in on.
var SubjectPlaceholders = []string{"{from}", "{number}", "{modem}"}

// templateProblem says what is wrong with email.subject_template, or "".
func templateProblem(t string) string {
	if strings.TrimSpace(t) == "" {
		return `must not be empty (default "SMS from {from}")`
	}
	if strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }) {
		return "control characters are not allowed in a subject"
	}
	if n := len([]rune(t)); n > 200 {
		return fmt.Sprintf("at most 200 characters, not %d", n)
	}
	for rest := t; rest != ""; {
		open, close := strings.IndexByte(rest, '{'), strings.IndexByte(rest, '}')
		switch {
		case open < 0 && close < 0:
			return ""
		case open < 0 || (close >= 0 && close < open):
			return `a "}" without its "{"`
		case close < 0:
			return `a "{" without its "}"`
		}
		if p := rest[open : close+1]; !slices.Contains(SubjectPlaceholders, p) {
			return fmt.Sprintf("unknown placeholder %s (known: %s)", p, strings.Join(SubjectPlaceholders, ", "))
		}
		rest = rest[close+1:]
	}
	return ""
}

// Forward is a pass-through rule: what local devices publish on Topic (a
// filter, wildcards allowed) is committed and forwarded to the hub.
type Forward struct {
	Topic string `toml:"topic"`
	QoS   int    `toml:"qos"`
	// Prefix, when set, is put before the topic on the hub.
	Prefix string `toml:"prefix"`
}

// SMS configures the SMS connector.
type SMS struct {
	// ReassemblyTimeout is how long the parts of a long message wait for
	// the missing ones before it is delivered with them marked.
	ReassemblyTimeout Duration `toml:"reassembly_timeout"`
	// NationalLanguages maps a number prefix ("+90") to the national
	// language tables ("turkish", "hindi", …) that messages to it may use
	// when the default alphabet cannot write them: fewer parts than UCS-2.
	NationalLanguages map[string]string `toml:"national_languages"`
	// CountryCode is the country calling code of the box's network
	// ("254"; "": not known), by which a national number (0712345678,
	// as networks often give local senders) reads as the international
	// one (+254712345678) wherever numbers are compared.
	CountryCode string `toml:"country_code"`
	// HistoryEvery is how often each modem's signal, registration,
	// operator and network are sampled (and on every change of the last
	// three); HistoryKeep how long samples are kept.
	HistoryEvery Duration `toml:"history_every"`
	HistoryKeep  Duration `toml:"history_keep"`
}

// XForm configures the recognition of form submissions in inbound SMS.
type XForm struct {
	// Enabled turns recognition on (default true).
	Enabled bool `toml:"enabled"`
	// Port, when not 0, is the application port forms are sent to: an
	// 8-bit SMS to it is a form, and one that does not decode is kept raw
	// with its error; an 8-bit SMS to another port is not looked at.
	// Without a port, payloads are recognised by their content.
	Port int `toml:"port"`
	// MaxSize bounds a payload decompressed and decoded, in bytes.
	MaxSize int `toml:"max_size"`
	// Forms may arrive in the OpenRosa compact SMS text format.
	Forms []Form `toml:"form"`
	// OpenRosa, when its URL is set, is where received forms are
	// submitted (besides xform/<form_id> on MQTT).
	OpenRosa OpenRosa `toml:"openrosa"`
}

// Webhook is one HTTP receiver of events: each event it subscribes to is
// POSTed to URL as JSON, signed with Secret.
type Webhook struct {
	Name    string   `toml:"name"`
	URL     string   `toml:"url"`
	Events  []string `toml:"events"`
	Secret  string   `toml:"secret"`
	Timeout Duration `toml:"timeout"`
}

// WebhookEvents are the events a [[webhook]] may subscribe to.
var WebhookEvents = []string{"sms.in", "sms.status", "xform"}

// DefaultWebhookTimeout is a [[webhook]]'s timeout when it gives none.
const DefaultWebhookTimeout = 10 * time.Second

// applyWebhookDefaults fills the per-webhook fields a file leaves out: a
// timeout given as "0s" is not left out (Validate refuses it). toml lists
// an array of tables' keys in order, each element starting with the
// table's own key.
func (c *Config) applyWebhookDefaults(md toml.MetaData) {
	given := make([]bool, len(c.Webhooks))
	i := -1
	for _, k := range md.Keys() {
		switch {
		case len(k) == 1 && k[0] == "webhook":
			i++
		case len(k) == 2 && k[0] == "webhook" && k[1] == "timeout" && i >= 0 && i < len(given):
			given[i] = true
		}
	}
	for i := range c.Webhooks {
		if !given[i] && c.Webhooks[i].Timeout.Duration == 0 {
			c.Webhooks[i].Timeout.Duration = DefaultWebhookTimeout
		}
	}
}

// validateWebhooks reports the problems of the [[webhook]] entries.
func (c Config) validateWebhooks(bad func(field string, value any, why string)) {
	names := map[string]bool{}
	name := regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	for i, w := range c.Webhooks {
		// Numbered from 1, as users count (and as routes are).
		p := fmt.Sprintf("webhook %d: ", i+1)
		switch {
		case !name.MatchString(w.Name):
			bad(p+"name", w.Name, "must be 1–64 of a–z, 0–9, '_' and '-'")
		case names[w.Name]:
			bad(p+"name", w.Name, "is used by another webhook")
		}
		names[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(p+"url", w.URL, "must be an http:// or https:// URL with a host")
		}
		if len(w.Events) == 0 {
			bad(p+"events", w.Events, "must list the events it gets: "+strings.Join(WebhookEvents, ", "))
		}
		for j, e := range w.Events {
			switch {
			case !slices.Contains(WebhookEvents, e):
				bad(p+"events", e, "is not an event: "+strings.Join(WebhookEvents, ", "))
			case slices.Index(w.Events, e) < j:
				bad(p+"events", e, "is listed twice")
			}
		}
		if w.Timeout.Duration <= 0 {
			bad(p+"timeout", w.Timeout.String(), "must be more than 0 (default 10s: leave it out for the default)")
		}
	}
}

// Route is one rule for inbound messages ([[route]]): when every field
// given matches, the message is also delivered to To, Reply is sent back
// to its sender on the channel it came in on (the first matching route
// with a reply only), and Tag is kept on it. Stop ends the evaluation.
type Route struct {
	Channel string   `toml:"channel"`
	From    string   `toml:"from"`
	Modem   string   `toml:"modem"`
	Keyword string   `toml:"keyword"`
	Form    string   `toml:"form"`
	To      []string `toml:"to"`
	Reply   string   `toml:"reply"`
	Tag     string   `toml:"tag"`
	Stop    bool     `toml:"stop"`
}

// DefaultRouteReplyLimit is route_reply_limit's default: automatic
// replies to one sender in route_reply_window.
const DefaultRouteReplyLimit = 1

// Keywords are what people text the gateway: STOP (and the usual opt-out
// words, always), START, JOIN <topic>, LEAVE <topic>. The lists add words
// to the built-in English ones; each [[keywords.language]] is another
// language with its own words and confirmations (empty ones: the
// English ones). In the confirmations, {topic} is the topic.
type Keywords struct {
	Stop       []string          `toml:"stop"`
	Start      []string          `toml:"start"`
	Join       []string          `toml:"join"`
	Leave      []string          `toml:"leave"`
	StopReply  string            `toml:"stop_reply"`
	StartReply string            `toml:"start_reply"`
	JoinReply  string            `toml:"join_reply"`
	LeaveReply string            `toml:"leave_reply"`
	Languages  []KeywordLanguage `toml:"language"`
}

// KeywordLanguage is one [[keywords.language]].
type KeywordLanguage struct {
	Name       string   `toml:"name"`
	Stop       []string `toml:"stop"`
	Start      []string `toml:"start"`
	Join       []string `toml:"join"`
	Leave      []string `toml:"leave"`
	StopReply  string   `toml:"stop_reply"`
	StartReply string   `toml:"start_reply"`
	JoinReply  string   `toml:"join_reply"`
	LeaveReply string   `toml:"leave_reply"`
}

// keywordUse is what a people keyword does and where it is defined.
type keywordUse struct{ action, where string }

// ReplyPlaceholders are what each keyword confirmation may hold: {topic}
// in those of JOIN and LEAVE; the others have none.
var ReplyPlaceholders = map[string][]string{"stop_reply": nil, "start_reply": nil, "join_reply": {"{topic}"}, "leave_reply": {"{topic}"}}

// RouteReplyPlaceholders are what a [[route]]'s reply may hold: {arg},
// what follows a keyword route's keyword.
var RouteReplyPlaceholders = []string{"{arg}"}

var (
	placeholder = regexp.MustCompile(`\{[^{}]*\}`)
	unclosed    = regexp.MustCompile(`\{[\p{L}_]`)
)

// placeholderProblem says what is wrong with the placeholders of a reply
// text that may hold known ones, or "": an unknown {name}, or a "{name"
// left open. Other braces (":-}") are text.
func placeholderProblem(t string, known []string) string {
	for _, p := range placeholder.FindAllString(t, -1) {
		if !slices.Contains(known, p) {
			if len(known) == 0 {
				return fmt.Sprintf("unknown placeholder %s (this reply has none)", p)
			}
			return fmt.Sprintf("unknown placeholder %s (known: %s)", p, strings.Join(known, ", "))
		}
	}
	if unclosed.MatchString(placeholder.ReplaceAllString(t, "")) {
		return `a "{" without its "}"`
	}
	return ""
}

// validateKeywords reports the problems of [keywords] and returns every
// people keyword (upper case) with what it does.
func (c Config) validateKeywords(bad func(field string, value any, why string)) map[string]keywordUse {
	word := regexp.MustCompile(`^[\p{L}\p{N}_-]{1,32}$`)
	seen := map[string]keywordUse{}
	check := func(p, where string, lists map[string][]string, replies map[string]string) {
		for _, k := range []string{"stop", "start", "join", "leave"} {
			for _, w := range lists[k] {
				if !word.MatchString(w) {
					bad(p+k, w, "is not one word (letters, digits, _ or -, at most 32)")
					continue
				}
				up := strings.ToUpper(w)
				if prev, ok := seen[up]; ok && prev.action != k {
					bad(p+k, w, "is already a "+prev.action+" word ("+prev.where+")")
					continue
				}
				if _, ok := seen[up]; !ok {
					seen[up] = keywordUse{k, where}
				}
			}
		}
		for _, k := range []string{"stop_reply", "start_reply", "join_reply", "leave_reply"} {
			if why := placeholderProblem(replies[k], ReplyPlaceholders[k]); why != "" {
				bad(p+k, replies[k], why)
			}
		}
	}
	for _, k := range []struct {
		k  string
		ws []string
	}{{"stop", []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}}, {"start", []string{"START", "UNSTOP"}}, {"join", []string{"JOIN"}}, {"leave", []string{"LEAVE"}}} {
		for _, w := range k.ws {
			seen[w] = keywordUse{k.k, "built in"}
		}
	}
	kw := c.Keywords
	check("keywords.", "keywords", map[string][]string{"stop": kw.Stop, "start": kw.Start, "join": kw.Join, "leave": kw.Leave},
		map[string]string{"stop_reply": kw.StopReply, "start_reply": kw.StartReply, "join_reply": kw.JoinReply, "leave_reply": kw.LeaveReply})
	for i, l := range kw.Languages {
		p := fmt.Sprintf("keywords.language %d: ", i+1)
		if l.Name == "" {
			bad(p+"name", l.Name, "is missing (say which language: \"sw\")")
		}
		check(p, fmt.Sprintf("keywords.language %d", i+1), map[string][]string{"stop": l.Stop, "start": l.Start, "join": l.Join, "leave": l.Leave},
			map[string]string{"stop_reply": l.StopReply, "start_reply": l.StartReply, "join_reply": l.JoinReply, "leave_reply": l.LeaveReply})
	}
	return seen
}

// RouteChannels are the channels a [[route]] may match.
var RouteChannels = []string{"sms", "email", "xmpp", "mqtt", "http", "hub"}

// validateRoutes reports the problems of the [[route]] entries. Whether a
// connector delivers to each address of To is the router's to say (outpost
// config check asks it).
func (c Config) validateRoutes(bad func(field string, value any, why string)) {
	tag := regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	if c.RouteReplyLimit < 0 {
		bad("route_reply_limit", c.RouteReplyLimit, fmt.Sprintf("must be 0 (no bound) or more (default %d auto-reply to one sender in route_reply_window)", DefaultRouteReplyLimit))
	}
	if c.RouteReplyWindow.Duration <= 0 {
		bad("route_reply_window", c.RouteReplyWindow.Duration.String(), "must be more than 0 (default 1h)")
	}
	keywords := c.validateKeywords(bad)
	for i, r := range c.Routes {
		// Numbered from 1, as users count and as the daemon names them.
		p := fmt.Sprintf("route %d: ", i+1)
		if len(r.To) == 0 && r.Reply == "" && r.Tag == "" {
			bad(strings.TrimSuffix(p, ": "), nil, "does nothing: give at least one of to, reply or tag")
		}
		if r.Channel != "" && !slices.Contains(RouteChannels, r.Channel) {
			bad(p+"channel", r.Channel, "is not a channel: "+strings.Join(RouteChannels, ", "))
		}
		if _, err := path.Match(r.From, ""); err != nil {
			bad(p+"from", r.From, "is not a valid glob (* ? [...]): "+err.Error())
		}
		if r.Modem != "" && !slices.ContainsFunc(c.Modems, func(m Modem) bool { return m.ID == r.Modem }) {
			ids := make([]string, len(c.Modems))
			for i, m := range c.Modems {
				ids[i] = m.ID
			}
			bad(p+"modem", r.Modem, "is not the id of a [[modem]] ("+strings.Join(ids, ", ")+")")
		}
		if strings.ContainsFunc(r.Keyword, unicode.IsSpace) {
			bad(p+"keyword", r.Keyword, "must be one word (it is compared with the first word of the text)")
		}
		// People keywords act on an SMS before the routes: a route on
		// one would never see it as meant (HELP as a stop word opts its
		// sender out, and nothing is answered to a number that opted out).
		if use, ok := keywords[strings.ToUpper(strings.TrimRightFunc(r.Keyword, unicode.IsPunct))]; ok && r.Keyword != "" {
			bad(p+"keyword", r.Keyword, fmt.Sprintf("is a %s word of [keywords] (%s): an SMS that is this word acts as %s before any route sees it: give the route another word, or take it out of [keywords]",
				use.action, use.where, strings.ToUpper(use.action)))
		}
		if why := placeholderProblem(r.Reply, RouteReplyPlaceholders); why != "" {
			bad(p+"reply", r.Reply, why)
		}
		if r.Keyword != "" && r.Form != "" {
			bad(p+"keyword", r.Keyword, "and form = "+strconv.Quote(r.Form)+" can never both match (a keyword never matches a form): give one")
		}
		for _, to := range r.To {
			if strings.TrimSpace(to) == "" {
				bad(p+"to", to, "must be an address (mailto:…, webhook:NAME, mqtt, a phone number…)")
			}
		}
		if r.Reply != "" && strings.ContainsFunc(r.Reply, func(r rune) bool { return (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f }) {
			bad(p+"reply", r.Reply, "must not hold control characters other than newline, carriage return and tab")
		}
		if r.Tag != "" && !tag.MatchString(r.Tag) {
			bad(p+"tag", r.Tag, "must be 1–64 of A–Z, a–z, 0–9, '_', '.', ':' and '-'")
		}
	}
}

// OpenRosa configures submission to an OpenRosa Form Submission API.
type OpenRosa struct {
	URL      string   `toml:"url"`
	User     string   `toml:"user"`
	Password string   `toml:"password"`
	Timeout  Duration `toml:"timeout"`
}

// Form describes a form sent in the compact SMS text format: the prefix,
// then the values of Fields in order, separated by Delimiter.
type Form struct {
	ID        string   `toml:"id"`
	Version   string   `toml:"version"`
	Prefix    string   `toml:"prefix"`
	Delimiter string   `toml:"delimiter"`
	Fields    []string `toml:"fields"`
}

// MQTT configures the embedded local broker.
type MQTT struct {
	Listen         string `toml:"listen"`
	AllowAnonymous bool   `toml:"allow_anonymous"`
	// Prefix is the first topic level; the topic API lives under
	// <prefix>/<gateway_id>/.
	Prefix string `toml:"prefix"`
	// TLSListen, when set, is a second listener with TLS; TLSCert and
	// TLSKey are its PEM certificate and key.
	TLSListen string `toml:"tls_listen"`
	TLSCert   string `toml:"tls_cert"`
	TLSKey    string `toml:"tls_key"`
	// WebSocketListen, when set, serves MQTT over WebSocket (browser
	// apps); anonymous clients are refused there.
	WebSocketListen string `toml:"websocket_listen"`
	// MaxClients limits the broker's clients (0: no limit);
	// MaxPacketSize bounds one MQTT packet (default 256 KiB): without a
	// bound a 30 MB publish took the daemon from 22 to 235 MB.
	MaxClients    int64  `toml:"max_clients"`
	MaxPacketSize uint32 `toml:"max_packet_size"`
	// Users may log in with a password whose bcrypt hash is given
	// ("outpost passwd" prints one).
	Users []MQTTUser `toml:"user"`
	// ACL rules are tried in order; the first that matches decides; none
	// matching is a refusal. Without rules every client that may log in
	// may use every topic.
	ACL []MQTTACL `toml:"acl"`
}

// MQTTUser is one broker account.
type MQTTUser struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"`
}

// MQTTACL is one access rule: Topic is a filter where %u is the user name
// and %c the client id; User is a name or "*" (any user).
type MQTTACL struct {
	User   string `toml:"user"`
	Topic  string `toml:"topic"`
	Access string `toml:"access"` // read, write, readwrite, deny
}

// Modem configures one GSM modem.
type Modem struct {
	ID     string `toml:"id"`
	Type   string `toml:"type"` // "serial" or "sim"
	Device string `toml:"device"`
	Baud   int    `toml:"baud"`
	PIN    string `toml:"pin"`
	// Number is the modem's own number (its SIM's): sms/in gives it as
	// "to". For type "sim" it is the simulated SIM's (a default is
	// given); for a serial modem it is optional (modems rarely know it).
	Number string `toml:"number"`
	// CommandTimeout bounds ordinary AT commands; SendTimeout bounds
	// AT+CMGS, which waits for the network and can take tens of seconds.
	CommandTimeout Duration `toml:"command_timeout"`
	SendTimeout    Duration `toml:"send_timeout"`
	// SweepInterval is how often stored messages are listed (AT+CMGL=4) in
	// case an indication was missed.
	SweepInterval Duration `toml:"sweep_interval"`
	// Calls is what the modem does with an incoming voice call: "ignore"
	// (let it ring) or "hangup" (after HangupAfter rings); every call is
	// logged with the caller's number. MissedCallMessage turns each call
	// into an inbound message that routes like an SMS.
	Calls             string `toml:"calls"`
	HangupAfter       int    `toml:"hangup_after"`
	MissedCallMessage bool   `toml:"missed_call_message"`
	// StorageWarn is the use of the modem's message store, in percent,
	// from which status and log warn that it fills up.
	StorageWarn int `toml:"storage_warn"`
	// IMEI and ICCID find a serial modem by identity instead of by
	// Device: the ports matching Scan (hw.DefaultScan when empty) are
	// probed, and the one whose modem or SIM answers with them is used,
	// whatever path it got this boot.
	IMEI  string   `toml:"imei"`
	ICCID string   `toml:"iccid"`
	Scan  []string `toml:"scan"`
	// ResetsPerHour bounds the resets of a hung modem (AT+CFUN=1,1, USB
	// re-authorise, USB power cycle) in any hour; -1 turns them off.
	ResetsPerHour int `toml:"resets_per_hour"`
	// BalanceUSSD is the USSD code that reads the SIM's credit, dialled
	// every BalanceEvery; BalanceRegex finds the amount in the answer
	// (default: bridge/sms.DefaultBalanceRegex). Below LowBalance (when
	// set) LowBalanceAlert's addresses are told once per crossing and,
	// with PauseOnLowBalance, only alerts go through the modem until a
	// check reads more.
	BalanceUSSD       string   `toml:"balance_ussd"`
	BalanceRegex      string   `toml:"balance_regex"`
	BalanceEvery      Duration `toml:"balance_every"`
	LowBalance        float64  `toml:"low_balance"`
	PauseOnLowBalance bool     `toml:"pause_on_low_balance"`
	LowBalanceAlert   []string `toml:"low_balance_alert"`
	// Routing of sends (routing.go): Prefixes are the numbers this modem
	// is preferred for (its operator's: on-net is cheaper and surer);
	// Send false makes it receive-only; Rate ("6/min") and DailyLimit
	// (parts per day by the box's clock) are the carrier's limits it
	// keeps; Jitter is the most of a random wait between its parts.
	Prefixes   []string `toml:"prefixes"`
	Send       *bool    `toml:"send"`
	Rate       string   `toml:"rate"`
	DailyLimit int      `toml:"daily_limit"`
	Jitter     Duration `toml:"jitter"`
}

// ussdCode is what a USSD code may be: printable ASCII, no quote.
var ussdCode = regexp.MustCompile(`^[ -!#-~]{1,160}$`)

// validateBalance checks the balance keys of a [[modem]] (p names it).
func (m Modem) validateBalance(p string, bad func(string, any, string)) {
	if m.BalanceUSSD == "" {
		for _, k := range []struct {
			key string
			set bool
		}{{"balance_regex", m.BalanceRegex != ""}, {"balance_every", m.BalanceEvery.Duration != 0}, {"low_balance", m.LowBalance != 0},
			{"pause_on_low_balance", m.PauseOnLowBalance}, {"low_balance_alert", len(m.LowBalanceAlert) > 0}} {
			if k.set {
				bad(p+k.key, nil, "needs balance_ussd (the USSD code that reads the balance, such as \"*100#\")")
			}
		}
		return
	}
	if !ussdCode.MatchString(m.BalanceUSSD) {
		bad(p+"balance_ussd", m.BalanceUSSD, "must be a USSD code such as \"*100#\" (printable ASCII, no quote, at most 160)")
	}
	if m.BalanceRegex != "" {
		re, err := regexp.Compile(m.BalanceRegex)
		switch {
		case err != nil:
			bad(p+"balance_regex", m.BalanceRegex, "is not a regular expression: "+err.Error())
		case re.SubexpIndex("amount") < 0 && re.NumSubexp() == 0:
			bad(p+"balance_regex", m.BalanceRegex, "must capture the amount: a group named amount, (?P<amount>…), or a first group")
		}
	}
	if m.BalanceEvery.Duration < time.Second {
		bad(p+"balance_every", m.BalanceEvery.String(), "must be at least 1s")
	}
	if m.LowBalance < 0 {
		bad(p+"low_balance", m.LowBalance, "must not be negative")
	}
	if (m.PauseOnLowBalance || len(m.LowBalanceAlert) > 0) && m.LowBalance == 0 {
		bad(p+"low_balance", m.LowBalance, "is needed for pause_on_low_balance and low_balance_alert: the amount below which the balance is low")
	}
	for _, a := range m.LowBalanceAlert {
		if strings.TrimSpace(a) == "" {
			bad(p+"low_balance_alert", a, "must be addresses (mailto:…, xmpp:…, a phone number…)")
		}
	}
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// UnmarshalText parses "30s", "2m" and the like.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"30s\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns a configuration that runs with no file: data in
// ./outpost-data, the local broker on loopback with anonymous access, and
// one simulated modem.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "outpost"
	}
	return Config{
		GatewayID: SanitizeID(host),
		DataDir:   "./outpost-data",
		LogLevel:  "info",
		MQTT:      MQTT{Listen: "127.0.0.1:1883", AllowAnonymous: true, Prefix: "outpost", MaxPacketSize: DefaultMaxPacketSize},
		SMS:       SMS{ReassemblyTimeout: Duration{24 * time.Hour}, HistoryEvery: Duration{5 * time.Minute}, HistoryKeep: Duration{7 * 24 * time.Hour}},
		XForm:     XForm{Enabled: true, MaxSize: 1 << 20},
		Hub: Hub{KeepAlive: Duration{30 * time.Second}, Window: 256, MaxMessages: 1_000_000, MaxBytes: 200 << 20,
			MaxAge: Duration{30 * 24 * time.Hour}, WhenFull: "drop_oldest"},
		Modems: []Modem{{ID: "sim0", Type: "sim", Number: "+15555550123"}},
		Email:  Email{MaxParts: 3, ConversationTTL: Duration{7 * 24 * time.Hour}, Subject: "ignore", SubjectTemplate: "SMS from {from}"},
		XMPP:   XMPP{MaxParts: 3, ConversationTTL: Duration{7 * 24 * time.Hour}, ReconnectMax: Duration{time.Minute}, PingEvery: Duration{time.Minute}},

		Retention: Retention{Messages: Duration{8760 * time.Hour}, Events: Duration{8760 * time.Hour}, Audit: Duration{8760 * time.Hour}},
		Quota:     Quota{QuietPriority: "urgent"},

		RouteReplyLimit:  DefaultRouteReplyLimit,
		RouteReplyWindow: Duration{time.Hour},
		Keywords: Keywords{
			StopReply:  "You will get no more messages from us. Send START to get them again.",
			StartReply: "Welcome back: you will get our messages again. Send STOP to stop them.",
			JoinReply:  "You joined {topic}. Send LEAVE {topic} to leave.",
			LeaveReply: "You left {topic}. Send JOIN {topic} to join again.",
		},
	}
}

// DefaultMaxPacketSize is mqtt.max_packet_size's default: 256 KiB.
const DefaultMaxPacketSize = 256 << 10

// MaxPacketSizeLimit is the largest mqtt.max_packet_size: MQTT's own
// bound on a packet (a remaining length of 268,435,455 bytes).
const MaxPacketSizeLimit = 268435455

// SanitizeID makes s usable as a single MQTT topic level.
func SanitizeID(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', ' ', 0:
			return '-'
		}
		return r
	}, s)
	return s
}

// modemDefaults fills the per-modem fields a file may leave out.
func (c *Config) applyModemDefaults() {
	for i := range c.Modems {
		m := &c.Modems[i]
		if m.ID == "" {
			m.ID = fmt.Sprintf("modem%d", i)
		}
		if m.Baud == 0 {
			m.Baud = 115200
		}
		if m.CommandTimeout.Duration == 0 {
			m.CommandTimeout.Duration = 10 * time.Second
		}
		if m.SendTimeout.Duration == 0 {
			m.SendTimeout.Duration = 90 * time.Second
		}
		if m.SweepInterval.Duration == 0 {
			m.SweepInterval.Duration = time.Minute
		}
		if m.Calls == "" {
			m.Calls = "ignore"
		}
		if m.HangupAfter == 0 {
			m.HangupAfter = 2
		}
		if m.StorageWarn == 0 {
			m.StorageWarn = 80
		}
		if m.ResetsPerHour == 0 {
			m.ResetsPerHour = 6
		}
		if m.BalanceUSSD != "" && m.BalanceEvery.Duration == 0 {
			m.BalanceEvery.Duration = 6 * time.Hour
		}
		if m.Type == "sim" && m.Number == "" {
			m.Number = fmt.Sprintf("+1555555%04d", 123+i)
		}
	}
}

// Load reads a TOML file on top of Default. Keys Outpost does not know are
// an error that names the key and its line. The result is not validated:
// call Validate, or use Read.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, raw)
}

// Read is Load and Validate together: every problem of the file at once,
// the values of the wrong type and the unknown keys first, then what
// Validate finds in the rest.
func Read(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Check(path, raw)
}

// Check is Read on bytes already read.
func Check(name string, raw []byte) (Config, error) {
	c, err := Parse(name, raw)
	var syntax syntaxError
	if errors.As(err, &syntax) {
		return c, err
	}
	if verr := c.Validate(); verr != nil {
		if err == nil {
			return c, verr
		}
		return c, fmt.Errorf("%w\n%s", err, strings.TrimPrefix(verr.Error(), "invalid config:\n"))
	}
	return c, err
}

// syntaxError is a file that is not TOML: nothing of it was decoded.
type syntaxError struct{ error }

func (e syntaxError) Unwrap() error { return e.error }

// Parse is Load on bytes already read; name is used in error messages.
// Every value of the wrong type and every unknown key is reported, each
// with its line; the Config returned with such an error holds all that
// did decode (the rest keeps its defaults), so that Validate can report
// its problems too. A syntax error stops everything: the file is not
// TOML.
func Parse(name string, raw []byte) (Config, error) {
	// First as plain TOML: only its syntax can fail here.
	var generic map[string]any
	gmd, err := toml.Decode(string(raw), &generic)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, syntaxError{fmt.Errorf("%s: line %d: %s", name, pe.Position.Line, pe.Message)}
		}
		return Config{}, syntaxError{fmt.Errorf("%s: %w", name, err)}
	}
	keys := map[string]toml.Key{}
	for _, k := range gmd.Keys() {
		keys[k.String()] = k
	}
	// Then into the Config. toml stops at the first value of the wrong
	// type: note it, take that key out of the document and decode again,
	// until the rest decodes.
	type problem struct {
		line int
		msg  string
	}
	var msgs []problem
	text := string(raw)
	var c Config
	var md toml.MetaData
	for {
		c = Default()
		// A file that lists modems replaces the default simulated one.
		c.Modems = nil
		md, err = toml.Decode(text, &c)
		if err == nil {
			break
		}
		last, why := decodeError(err)
		k, known := keys[last]
		if !known || len(msgs) > 100 {
			return Config{}, fmt.Errorf("%s: %w", name, err)
		}
		// In an array of tables ([[webhook]]), the key comes out of the
		// table that holds the bad value only: the others' are good.
		line, what := 0, k.String()
		if depth, elem := culprit(generic, k, last); elem >= 0 {
			line = keyLineAt(raw, k, depth, elem)
			what = fmt.Sprintf("%s %d: %s", strings.Join(k[:depth+1], "."), elem+1, strings.Join(k[depth+1:], "."))
		} else if !deleteKey(generic, k) {
			return Config{}, fmt.Errorf("%s: %w", name, err)
		}
		if line == 0 {
			line = keyLine(raw, k)
		}
		msgs = append(msgs, problem{line, fmt.Sprintf("%s: line %d: %s: %s", name, line, what, why)})
		var b bytes.Buffer
		if err := toml.NewEncoder(&b).Encode(generic); err != nil {
			return Config{}, fmt.Errorf("%s: %w", name, err)
		}
		text = b.String()
	}
	for _, k := range md.Undecoded() {
		line := keyLine(raw, k)
		msgs = append(msgs, problem{line, fmt.Sprintf("%s: line %d: unknown key %q", name, line, k.String())})
	}
	if !md.IsDefined("modem") {
		c.Modems = Default().Modems
		c.SimulatedByDefault = true
	}
	defaultQoS(md, &c)
	c.applyModemDefaults()
	c.applyWebhookDefaults(md)
	if len(msgs) > 0 {
		sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].line < msgs[j].line })
		lines := make([]string, len(msgs))
		for i, p := range msgs {
			lines[i] = p.msg
		}
		return c, errors.New(strings.Join(lines, "\n"))
	}
	return c, nil
}

// typeError is how toml words a value of the wrong type.
var typeError = regexp.MustCompile(`^toml: (?:line \d+ )?\(last key "(.*)"\): (.*)$`)

// incompatible is toml's words for a value of another type than the
// field's, in Go's terms ("destination has type slice").
var incompatible = regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (\S+)$`)

// tomlTypes name toml's and Go's types as a config file's reader knows
// them.
var tomlTypes = map[string]string{"string": "a string", "integer": "an integer", "float": "a number", "bool": "true or false", "boolean": "true or false",
	"array": "a list", "slice": "a list", "table": "a table", "map": "a table", "struct": "a table", "inline table": "a table",
	"int": "an integer", "int64": "an integer", "float64": "a number", "time.Time": "a date", "datetime": "a date"}

// decodeError finds the key a decoding error is about, and why.
func decodeError(err error) (key, why string) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.LastKey, pe.Message
	}
	if m := typeError.FindStringSubmatch(err.Error()); m != nil {
		why := m[2]
		if t := incompatible.FindStringSubmatch(why); t != nil && tomlTypes[t[1]] != "" && tomlTypes[t[2]] != "" {
			why = fmt.Sprintf("must be %s, not %s", tomlTypes[t[2]], tomlTypes[t[1]])
		}
		return strings.ReplaceAll(m[1], `\"`, `"`), why
	}
	return "", err.Error()
}

// culprit finds, for a key whose path goes through an array of tables
// (webhook.events: [[webhook]]), the first table whose value does not
// decode, each table's value decoded alone, and takes the key out of that
// table only (the array is at depth on the key's path). elem is -1 when
// the key is not in such an array, or no table's value fails alone (then
// it takes nothing out).
func culprit(doc map[string]any, key toml.Key, last string) (depth, elem int) {
	m := doc
	for depth = 0; depth < len(key)-1; depth++ {
		switch v := m[key[depth]].(type) {
		case map[string]any:
			m = v
			continue
		case []map[string]any:
			k := key[len(key)-1]
			for i, t := range v {
				parent, ok := tableAt(t, key[depth+1:len(key)-1])
				if !ok {
					continue
				}
				val, ok := parent[k]
				if !ok {
					continue
				}
				// The value alone, on its path.
				one := map[string]any{k: val}
				for j := len(key) - 2; j > depth; j-- {
					one = map[string]any{key[j]: one}
				}
				alone := map[string]any{key[depth]: []map[string]any{one}}
				for j := depth - 1; j >= 0; j-- {
					alone = map[string]any{key[j]: alone}
				}
				if failsOn(alone, last) {
					delete(parent, k)
					return depth, i
				}
			}
		}
		return 0, -1
	}
	return 0, -1
}

// tableAt follows path from t through nested tables.
func tableAt(t map[string]any, path []string) (map[string]any, bool) {
	for _, p := range path {
		next, ok := t[p].(map[string]any)
		if !ok {
			return nil, false
		}
		t = next
	}
	return t, true
}

// failsOn reports whether doc fails to decode into a Config on the key
// last.
func failsOn(doc map[string]any, last string) bool {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(doc); err != nil {
		return false
	}
	c := Default()
	c.Modems = nil
	_, err := toml.Decode(b.String(), &c)
	if err == nil {
		return false
	}
	k, _ := decodeError(err)
	return k == last
}

// keyLineAt is keyLine for the key in the elem-th table (from 0) of the
// array of tables at depth on its path: the line of its assignment after
// that table's header and before the next header; 0 when not found.
func keyLineAt(raw []byte, k toml.Key, depth, elem int) int {
	header := regexp.MustCompile(`^\s*\[\[\s*` + regexp.QuoteMeta(strings.Join(k[:depth+1], ".")) + `\s*\]\]`)
	assign := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(k[len(k)-1]) + `"?\s*=`)
	anyHeader := regexp.MustCompile(`^\s*\[`)
	n, in := -1, false
	for i, line := range bytes.Split(raw, []byte("\n")) {
		switch {
		case header.Match(line):
			n++
			in = n == elem
		case anyHeader.Match(line) && len(k) == depth+2:
			in = false
		case in && assign.Match(line):
			return i + 1
		}
	}
	return 0
}

// deleteKey removes key from a decoded TOML document, from every table of
// an array of tables on its path. It reports whether anything was there.
func deleteKey(doc map[string]any, key toml.Key) bool {
	if len(key) == 0 {
		return false
	}
	v, ok := doc[key[0]]
	if !ok {
		return false
	}
	if len(key) == 1 {
		delete(doc, key[0])
		return true
	}
	found := false
	switch t := v.(type) {
	case map[string]any:
		found = deleteKey(t, key[1:])
	case []map[string]any:
		for _, m := range t {
			found = deleteKey(m, key[1:]) || found
		}
	}
	return found
}

// defaultQoS sets qos = 1 on the [[hub.forward]] and [[hub.subscribe]]
// rules that do not give one: at QoS 0 a message leaves the durable queue
// once written to the connection, not once the hub acknowledged it.
// toml lists an array of tables' keys in order, each element starting
// with the table's own key.
func defaultQoS(md toml.MetaData, c *Config) {
	for _, r := range []struct {
		name  string
		rules []Forward
	}{{"forward", c.Hub.Forward}, {"subscribe", c.Hub.Subscribe}} {
		given := make([]bool, len(r.rules))
		i := -1
		for _, k := range md.Keys() {
			if len(k) < 2 || k[0] != "hub" || k[1] != r.name {
				continue
			}
			switch {
			case len(k) == 2:
				i++
			case len(k) == 3 && k[2] == "qos" && i >= 0 && i < len(given):
				given[i] = true
			}
		}
		for i := range r.rules {
			if !given[i] {
				r.rules[i].QoS = 1
			}
		}
	}
}

// keyLine finds the line on which the last part of key is assigned, after
// the header of the table that holds it. toml does not expose positions of
// undecoded keys, so this scans the text; 0 means not found.
func keyLine(raw []byte, k toml.Key) int {
	if len(k) == 0 {
		return 0
	}
	last := regexp.QuoteMeta(k[len(k)-1])
	assign := regexp.MustCompile(`^\s*"?` + last + `"?\s*=`)
	header := regexp.MustCompile(`^\s*\[\[?\s*"?` + last + `"?\s*\]\]?`)
	inTable := len(k) == 1
	var table string
	if len(k) > 1 {
		table = k[len(k)-2]
	}
	tableHeader := regexp.MustCompile(`^\s*\[\[?\s*(?:[^\]]*\.)?"?` + regexp.QuoteMeta(table) + `"?\s*\]\]?`)
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(k) > 1 && tableHeader.Match(line) {
			inTable = true
		}
		if inTable && (assign.Match(line) || header.Match(line)) {
			return i + 1
		}
	}
	return 0
}

// Validate reports every problem at once, each with its field path and value.
func (c Config) Validate() error {
	var errs []string
	bad := func(field string, value any, why string) { errs = append(errs, problem(field, value, why)) }
	if c.GatewayID == "" {
		bad("gateway_id", c.GatewayID, "must not be empty")
	} else if strings.ContainsAny(c.GatewayID, "/+# ") || strings.HasPrefix(c.GatewayID, "$") || !printableName(c.GatewayID) {
		bad("gateway_id", c.GatewayID, "must be one MQTT topic level (no '/', '+', '#', spaces, control characters or a leading '$')")
	}
	if c.DataDir == "" {
		bad("data_dir", c.DataDir, "must not be empty")
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log_level", c.LogLevel, "must be one of trace, debug, info, warn, error")
	}
	c.HTTP.validate(bad)
	if c.MQTT.Prefix == "" || strings.ContainsAny(c.MQTT.Prefix, "+# ") {
		bad("mqtt.prefix", c.MQTT.Prefix, "must be a non-empty topic without wildcards or spaces")
	}
	if c.MQTT.Listen != "" {
		host, _, err := net.SplitHostPort(c.MQTT.Listen)
		if err != nil || !validAddr(c.MQTT.Listen) {
			bad("mqtt.listen", c.MQTT.Listen, "must be host:port with a port 0–65535 (empty disables the broker)")
		} else if c.MQTT.AllowAnonymous && !isLoopback(host) {
			bad("mqtt.allow_anonymous", c.MQTT.AllowAnonymous,
				fmt.Sprintf("anonymous access is only allowed on a loopback listener, and mqtt.listen is %q", c.MQTT.Listen))
		}
	}
	if c.MQTT.WebSocketListen != "" && !validAddr(c.MQTT.WebSocketListen) {
		bad("mqtt.websocket_listen", c.MQTT.WebSocketListen, "must be host:port with a port 0–65535")
	}
	if c.MQTT.MaxClients < 0 {
		bad("mqtt.max_clients", c.MQTT.MaxClients, "must be 0 (no limit) or more")
	}
	if n := c.MQTT.MaxPacketSize; n < 1024 || n > MaxPacketSizeLimit {
		bad("mqtt.max_packet_size", n, fmt.Sprintf("must be 1024 to %d bytes (default %d): one packet is read whole into memory", MaxPacketSizeLimit, DefaultMaxPacketSize))
	}
	if c.SMS.HistoryEvery.Duration < time.Second {
		bad("sms.history_every", c.SMS.HistoryEvery.String(), "must be at least 1s")
	}
	if c.SMS.HistoryKeep.Duration < time.Hour {
		bad("sms.history_keep", c.SMS.HistoryKeep.String(), "must be at least 1h")
	}
	if c.SMS.ReassemblyTimeout.Duration < time.Second {
		bad("sms.reassembly_timeout", c.SMS.ReassemblyTimeout.String(), "must be at least 1s")
	}
	if cc := c.SMS.CountryCode; cc != "" && !regexp.MustCompile(`^\+?[1-9][0-9]{0,2}$`).MatchString(cc) {
		bad("sms.country_code", cc, `must be a country calling code: 1 to 3 digits, not starting with 0 ("254"), or "" (not known)`)
	}
	// The tables of 3GPP TS 23.038 (the pdu package maps them to ids).
	languages := " turkish spanish portuguese bengali gujarati hindi kannada malayalam oriya punjabi tamil telugu urdu "
	for prefix, lang := range c.SMS.NationalLanguages {
		if !regexp.MustCompile(`^\+?[0-9]{1,15}$`).MatchString(prefix) {
			bad("sms.national_languages", prefix, "keys are number prefixes like \"+90\"")
		}
		if !strings.Contains(languages, " "+strings.ToLower(lang)+" ") {
			bad("sms.national_languages."+prefix, lang, "must be one of"+strings.TrimRight(languages, " "))
		}
	}
	groupName := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	number := regexp.MustCompile(`^\+?[0-9]{3,20}$`)
	for name, members := range c.Groups {
		if !groupName.MatchString(name) {
			bad("groups", name, "group names are letters, digits, '_', '.', '-'")
		}
		if len(members) == 0 {
			bad("groups."+name, members, "a group needs at least one number")
		}
		for _, m := range members {
			if !number.MatchString(m) {
				bad("groups."+name, m, `members are phone numbers: 3 to 20 digits after an optional "+"`)
			}
		}
	}
	if u := c.Hub.URL; u != "" && !strings.HasPrefix(u, "tcp://") && !strings.HasPrefix(u, "ssl://") && !strings.HasPrefix(u, "tls://") {
		bad("hub.url", u, "must be tcp://host:port or ssl://host:port")
	}
	if c.Hub.WhenFull != "drop_oldest" && c.Hub.WhenFull != "refuse" {
		bad("hub.when_full", c.Hub.WhenFull, `must be "drop_oldest" or "refuse"`)
	}
	// Each bound on its own: one message naming three fields mixed the
	// good values with the bad one.
	if c.Hub.MaxMessages < 0 {
		bad("hub.max_messages", c.Hub.MaxMessages, "must not be negative (0: no bound)")
	}
	if c.Hub.MaxBytes < 0 {
		bad("hub.max_bytes", c.Hub.MaxBytes, "must not be negative (0: no bound)")
	}
	switch {
	case c.Hub.MaxAge.Duration < 0:
		bad("hub.max_age", c.Hub.MaxAge.String(), "must not be negative (0: no bound)")
	case c.Hub.MaxAge.Duration > 0 && c.Hub.MaxAge.Duration < time.Second:
		bad("hub.max_age", c.Hub.MaxAge.String(), "must be at least 1s (or 0: no bound): a message must have time to reach the hub")
	}
	if c.Hub.Window < 1 || c.Hub.Window > 65535 {
		bad("hub.window", c.Hub.Window, "must be 1 (strict order) to 65535")
	}
	rules := append(append([]Forward(nil), c.Hub.Forward...), c.Hub.Subscribe...)
	for i, f := range rules {
		p := fmt.Sprintf("hub.forward %d: ", i+1)
		if i >= len(c.Hub.Forward) {
			p = fmt.Sprintf("hub.subscribe %d: ", i-len(c.Hub.Forward)+1)
		}
		if f.Topic == "" || strings.Contains(f.Topic, "#") && !strings.HasSuffix(f.Topic, "#") {
			bad(p+"topic", f.Topic, "must be a topic filter ('#' only at the end)")
		}
		if f.QoS < 0 || f.QoS > 1 {
			bad(p+"qos", f.QoS, "must be 0 or 1")
		}
		if strings.ContainsAny(f.Prefix, "+#") {
			bad(p+"prefix", f.Prefix, "must not hold wildcards")
		}
	}
	if c.XForm.Port < 0 || c.XForm.Port > 65535 {
		bad("xform.port", c.XForm.Port, "must be 0 (any) or a port 1–65535")
	}
	if c.XForm.MaxSize < 1024 || c.XForm.MaxSize > 64<<20 {
		bad("xform.max_size", c.XForm.MaxSize, "must be between 1024 and 67108864 bytes")
	}
	if u := c.XForm.OpenRosa.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		bad("xform.openrosa.url", u, "must be an http:// or https:// URL")
	}
	xmlName := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	prefixes := map[string]bool{}
	for i, f := range c.XForm.Forms {
		p := fmt.Sprintf("xform.form %d: ", i+1)
		if !xmlName.MatchString(f.ID) {
			bad(p+"id", f.ID, "must be an XML name (letters, digits, '_', '-', '.'; not starting with a digit)")
		}
		if strings.TrimSpace(f.Prefix) == "" {
			bad(p+"prefix", f.Prefix, "must not be empty")
		} else if prefixes[strings.ToLower(f.Prefix)] {
			bad(p+"prefix", f.Prefix, "is used by another form")
		}
		prefixes[strings.ToLower(f.Prefix)] = true
		if len(f.Fields) == 0 {
			bad(p+"fields", f.Fields, "must list the form's fields in the order the SMS gives them")
		}
		for _, fp := range f.Fields {
			for _, seg := range strings.Split(fp, "/") {
				if !xmlName.MatchString(seg) {
					bad(p+"fields", fp, "each field is a path of XML names, like \"patient/name\"")
					break
				}
			}
		}
	}
	if c.MQTT.TLSListen != "" {
		if !validAddr(c.MQTT.TLSListen) {
			bad("mqtt.tls_listen", c.MQTT.TLSListen, "must be host:port with a port 0–65535")
		}
		if c.MQTT.TLSCert == "" || c.MQTT.TLSKey == "" {
			bad("mqtt.tls_cert/tls_key", c.MQTT.TLSCert, "a TLS listener needs a certificate and its key (PEM files)")
		}
	}
	if (c.Hub.CertFile == "") != (c.Hub.KeyFile == "") {
		bad("hub.cert_file/key_file", c.Hub.CertFile, "give both or neither")
	}
	users := map[string]bool{}
	for i, u := range c.MQTT.Users {
		p := fmt.Sprintf("mqtt.user %d: ", i+1)
		if u.Name == "" || users[u.Name] {
			bad(p+"name", u.Name, "must be set and unique")
		}
		users[u.Name] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			bad(p+"password_hash", "…", "must be a bcrypt hash (outpost passwd prints one)")
		}
	}
	for i, r := range c.MQTT.ACL {
		p := fmt.Sprintf("mqtt.acl %d: ", i+1)
		if r.User != "*" && !users[r.User] {
			bad(p+"user", r.User, `must be "*" or the name of a [[mqtt.user]]`)
		}
		if r.Topic == "" {
			bad(p+"topic", r.Topic, "must be a topic filter")
		}
		switch r.Access {
		case "read", "write", "readwrite", "deny":
		default:
			bad(p+"access", r.Access, "must be read, write, readwrite or deny")
		}
	}
	ids := map[string]bool{}
	numbers := map[string]string{} // without "+": the modem's id
	for i, m := range c.Modems {
		p := fmt.Sprintf("modem %d: ", i+1)
		if m.ID == "" || strings.ContainsAny(m.ID, "/+# ") {
			bad(p+"id", m.ID, "must be a non-empty topic level")
		} else if ids[m.ID] {
			bad(p+"id", m.ID, "is used by another modem")
		}
		ids[m.ID] = true
		switch m.Type {
		case "serial":
			if m.Device == "" && m.IMEI == "" && m.ICCID == "" {
				bad(p+"device", m.Device, "a serial modem needs a device path, or an imei or iccid to find it by (outpost modems scan lists them)")
			}
			if m.Device != "" && (m.IMEI != "" || m.ICCID != "") {
				// The device would be opened and the identity never
				// checked: after the ports renumber, another SIM sends.
				bad(p+"device", m.Device, "give the device or an imei or iccid to find it by, not both")
			}
		case "sim":
		default:
			bad(p+"type", m.Type, `must be "serial" or "sim"`)
		}
		if m.Baud <= 0 {
			bad(p+"baud", m.Baud, "must be positive")
		}
		if m.Number != "" && !regexp.MustCompile(`^\+?[0-9]{3,20}$`).MatchString(m.Number) {
			bad(p+"number", m.Number, "must be a phone number such as +254700000001")
		} else if other := numbers[strings.TrimPrefix(m.Number, "+")]; m.Number != "" && other != "" {
			// Answers go out through the number a message came in on,
			// and two simulated modems of one number are one.
			bad(p+"number", m.Number, "is modem "+other+"'s number")
		} else if m.Number != "" {
			numbers[strings.TrimPrefix(m.Number, "+")] = m.ID
		}
		if m.PIN != "" && !regexp.MustCompile(`^[0-9]{4,8}$`).MatchString(m.PIN) {
			bad(p+"pin", "****", "must be 4 to 8 digits")
		}
		checkModemRouting(p, m, bad)
		if m.CommandTimeout.Duration < 100*time.Millisecond {
			bad(p+"command_timeout", m.CommandTimeout.String(), "must be at least 100ms")
		}
		if m.SendTimeout.Duration < time.Second {
			bad(p+"send_timeout", m.SendTimeout.String(), "must be at least 1s")
		}
		if m.SweepInterval.Duration < time.Second {
			bad(p+"sweep_interval", m.SweepInterval.String(), "must be at least 1s")
		}
		if m.Calls != "ignore" && m.Calls != "hangup" {
			bad(p+"calls", m.Calls, `must be "ignore" or "hangup"`)
		}
		if m.HangupAfter < 1 || m.HangupAfter > 30 {
			bad(p+"hangup_after", m.HangupAfter, "must be 1 to 30 rings")
		}
		if m.StorageWarn < 1 || m.StorageWarn > 100 {
			bad(p+"storage_warn", m.StorageWarn, "must be a percentage, 1 to 100")
		}
		if m.IMEI != "" && !regexp.MustCompile(`^[0-9]{14,16}$`).MatchString(m.IMEI) {
			bad(p+"imei", m.IMEI, "must be the modem's 15 digits (AT+CGSN; outpost modems scan shows it)")
		}
		if m.ICCID != "" && !regexp.MustCompile(`^[0-9]{18,21}[Ff]?$`).MatchString(m.ICCID) {
			bad(p+"iccid", m.ICCID, "must be the SIM's 18 to 22 digits (AT+CCID; outpost modems scan shows it)")
		}
		if (m.IMEI != "" || m.ICCID != "" || len(m.Scan) > 0) && m.Type != "serial" {
			bad(p+"type", m.Type, `imei, iccid and scan find a "serial" modem`)
		}
		for _, g := range m.Scan {
			if _, err := filepath.Match(g, ""); err != nil || !filepath.IsAbs(g) {
				bad(p+"scan", g, "must be absolute path patterns such as /dev/ttyUSB*")
			}
		}
		if m.ResetsPerHour < -1 {
			bad(p+"resets_per_hour", m.ResetsPerHour, "must be -1 (no resets) or more")
		}
		m.validateBalance(p, bad)
	}
	errs = append(errs, c.Email.problems()...)
	errs = append(errs, c.XMPP.problems()...)
	c.validateWebhooks(bad)
	c.validateRoutes(bad)
	c.Retention.validate(bad)
	c.Quota.validate(bad)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid config:\n  %s", strings.Join(errs, "\n  "))
}

// problems lists what is wrong with the [xmpp] section.
func (x XMPP) problems() []string {
	var errs []string
	bad := func(field string, value any, why string) { errs = append(errs, problem("xmpp."+field, value, why)) }
	if x.JID == "" {
		if x.Password != "" || x.Server != "" || len(x.Users) > 0 {
			bad("jid", x.JID, "must be Outpost's own account (outpost@example.org) when the [xmpp] section is used")
		}
		return errs
	}
	if !bareJID(x.JID) {
		bad("jid", x.JID, "must be an account such as outpost@example.org (no resource)")
	}
	if x.Password == "" {
		bad("password", "", "must be the password of xmpp.jid")
	}
	if x.Server != "" && !validAddr(x.Server) {
		bad("server", x.Server, "must be host:port (default: the JID's domain)")
	}
	if len(x.Users) == 0 {
		bad("user", 0, "must list who may use Outpost by chat ([[xmpp.user]] jid = \"alice@example.org\", role = \"user\" or \"admin\"): no one could")
	}
	seen := map[string]bool{}
	for i, u := range x.Users {
		p := fmt.Sprintf("user %d: ", i+1)
		if !bareJID(u.JID) {
			bad(p+"jid", u.JID, "must be an account such as alice@example.org (no resource)")
		}
		if k := strings.ToLower(u.JID); seen[k] {
			bad(p+"jid", u.JID, "is listed twice")
		} else {
			seen[k] = true
		}
		if strings.EqualFold(u.JID, x.JID) {
			bad(p+"jid", u.JID, "is Outpost's own account")
		}
		if u.Role != "user" && u.Role != "admin" {
			bad(p+"role", u.Role, `must be "user" (send and reply) or "admin" (also status, retry, cancel, ban, stats, audit)`)
		}
	}
	if x.MaxParts < 1 || x.MaxParts > 255 {
		bad("max_parts", x.MaxParts, "must be 1–255 (default 3)")
	}
	if x.ConversationTTL.Duration < time.Minute {
		bad("conversation_ttl", x.ConversationTTL.String(), "must be at least 1m (default 168h)")
	}
	if x.ReconnectMax.Duration < time.Second {
		bad("reconnect_max", x.ReconnectMax.String(), "must be at least 1s (default 1m)")
	}
	if x.PingEvery.Duration < time.Second {
		bad("ping_every", x.PingEvery.String(), "must be at least 1s (default 1m)")
	}
	return errs
}

// bareJID reports whether s is user@domain with no resource, white
// space or characters a JID cannot have there.
func bareJID(s string) bool {
	node, domain, ok := strings.Cut(s, "@")
	return ok && node != "" && domain != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`"&'/:<>`, r)
	}) && !strings.Contains(domain, "@")
}

// problems lists what is wrong with the [email] section.
func (e Email) problems() []string {
	var errs []string
	bad := func(field string, value any, why string) { errs = append(errs, problem("email."+field, value, why)) }
	if e.Listen != "" && !validAddr(e.Listen) {
		bad("listen", e.Listen, "must be host:port with a port 0–65535 (empty: no SMTP server)")
	}
	if (e.Listen != "" || e.SMTP != "") && (e.Domain == "" || strings.ContainsAny(e.Domain, "@ <>\"\t") || !printableName(e.Domain)) {
		bad("domain", e.Domain, "must be the phones' mail domain (mail goes to <number>@<domain>), e.g. \"sms.example.org\"")
	}
	if e.Listen != "" && len(e.Allow) == 0 {
		bad("allow", e.Allow, "must list the senders that may send SMS (\"ops@example.org\" or \"*@example.org\"): no one could")
	}
	for _, a := range e.Allow {
		local, domain, ok := strings.Cut(a, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(a, " <>\t") || strings.Contains(domain, "*") || (strings.Contains(local, "*") && local != "*") {
			bad("allow", a, "must be an address (\"ops@example.org\") or \"*@domain\"")
		}
	}
	if (e.TLSCert == "") != (e.TLSKey == "") {
		bad("tls_cert/tls_key", e.TLSCert, "STARTTLS needs a certificate and its key (PEM files)")
	}
	names := map[string]bool{}
	for i, u := range e.Accounts {
		p := fmt.Sprintf("account %d: ", i+1)
		switch {
		case u.Name == "" || !printableName(u.Name):
			bad(p+"name", u.Name, "must be a printable name")
		case names[u.Name]:
			bad(p+"name", u.Name, "is listed twice")
		}
		names[u.Name] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			bad(p+"password_hash", "…", "must be a bcrypt hash (outpost passwd prints one)")
		}
	}
	if host, _, err := net.SplitHostPort(e.Listen); err == nil && len(e.Accounts) > 0 && e.TLSCert == "" && !isLoopback(host) {
		bad("account", len(e.Accounts), fmt.Sprintf("passwords would cross the network in clear: give email.tls_cert and tls_key (STARTTLS), or listen on loopback, not %q", e.Listen))
	}
	if e.MaxParts < 1 || e.MaxParts > 255 {
		bad("max_parts", e.MaxParts, "must be 1–255 (default 3)")
	}
	if e.SMTP != "" {
		scheme, hostport, _ := strings.Cut(e.SMTP, "://")
		if (scheme != "smtp" && scheme != "smtps") || !validAddr(hostport) {
			bad("smtp", e.SMTP, "must be smtp://host:port (STARTTLS when offered) or smtps://host:port (implicit TLS)")
		}
	}
	if e.ConversationTTL.Duration < time.Minute {
		bad("conversation_ttl", e.ConversationTTL.String(), "must be at least 1m (default 168h)")
	}
	if e.Subject != "ignore" && e.Subject != "prefix" {
		bad("subject", e.Subject, `must be "ignore" (the subject is not sent, the default) or "prefix" (it goes before the text, on its own line)`)
	}
	if why := templateProblem(e.SubjectTemplate); why != "" {
		bad("subject_template", e.SubjectTemplate, why)
	}
	return errs
}

// problem is one line of Validate's error: the field, its value as the
// file writes it (a string quoted, a list in brackets; none for nil) and
// why it is wrong.
func problem(field string, value any, why string) string {
	if value == nil {
		return field + ": " + why
	}
	return field + " = " + tomlValue(value) + ": " + why
}

// tomlValue writes a value the way a TOML file does, not Go's syntax.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// validAddr reports whether a is host:port with a numeric port 0–65535.
func validAddr(a string) bool {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// printableName reports whether s is valid UTF-8 without control
// characters.
func printableName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Decoded reports whether err, from Read or Check, came with a Config
// that holds all of the file that decoded (values of the wrong type,
// unknown keys and invalid values were found): not a file that could not
// be read or is not TOML. outpost config check goes on to check such a
// Config's routes, so that every problem is listed at once.
func Decoded(err error) bool {
	var syntax syntaxError
	var read *fs.PathError
	return err != nil && !errors.As(err, &syntax) && !errors.As(err, &read)
}
