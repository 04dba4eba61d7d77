package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	goxmpp "github.com/xmppo/go-xmpp"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// maxChat bounds the text of one chat Outpost takes, in bytes.
const maxChat = 8 << 10

// confirmWithin is how long a long text waits for its "yes".
const confirmWithin = 10 * time.Minute

// pendingSend is a send that takes more parts than MaxParts, waiting for
// its user's "yes".
type pendingSend struct {
	req bridge.SendRequest
	ch  goxmpp.Chat
	at  time.Time
}

// adminCommands are the commands of role admin.
var adminCommands = []string{"status", "queue", "show", "retry", "cancel", "ban", "unban", "stats", "audit", "ussd"}

const userHelp = `Send an SMS: +15555550100 your text (or several numbers with commas, group:NAME, topic:NAME, or a contact's name, then the text).
Answer the last SMS shown to you: . your text (or: reply your text)
send +15555550100 +15555550101 your text: the same text to several numbers.
yes: send a long text Outpost asked you to confirm.`

const adminHelp = `
Admin:
status: modems, signal, queues, links, disk
queue: the SMS waiting to go out
show ID: a message and its history
retry ID, cancel ID
ban NUMBER [reason], unban NUMBER
stats [NUMBER]: counts of the last 7 days
audit [SINCE]: who changed what (since: 7d, 36h or a time)
ussd MODEM CODE [ANSWER…]: run a USSD code (*100#), answering its menus
Add --json to an admin command for the answer as the API gives it.`

// help is the help text for role.
func help(role string) string {
	if role == RoleAdmin {
		return userHelp + adminHelp
	}
	return userHelp
}

// handleChat answers one chat of a user, or refuses a stranger.
func (c *Connector) handleChat(ctx context.Context, s *session, ch goxmpp.Chat) {
	from := bareOf(ch.Remote)
	role := c.role(from)
	text := strings.TrimSpace(ch.Text)
	var ans string
	if len(text) > maxChat {
		ans = fmt.Sprintf("That is %d bytes: Outpost takes at most %d in one chat message.", len(text), maxChat)
	} else {
		ans = c.command(bridge.WithCaller(ctx, c.Name(), "xmpp:"+from), from, role, ch, text)
	}
	if len(ans) > maxAnswer {
		// A server ends the stream of a client that sends a stanza over
		// its limit (Prosody's is 256 KiB): one long answer (audit
		// --json) would cut Outpost off, and not reach the user either.
		cut := maxAnswer
		for cut > 0 && !utf8.RuneStart(ans[cut]) {
			cut--
		}
		ans = ans[:cut] + fmt.Sprintf("\n… cut here: the answer has %d bytes, more than one chat message may carry. The CLI or the HTTP API gives it whole.", len(ans))
	}
	if ans != "" {
		s.reply(ch.Remote, ans)
	}
}

// maxAnswer bounds the text of an answer, in bytes, well under what
// servers take in one stanza (Prosody and ejabberd: 256 KiB by default),
// even with every character escaped.
const maxAnswer = 48 << 10

// refusal is what a stranger is told: the refusal once in RefuseEvery,
// "" in between (their chats are ignored). Only the refusals are logged,
// each with the chats ignored since the one before, so that a flood does
// not flood the log.
func (c *Connector) refusal(full string) string {
	from := bareOf(full)
	now := time.Now()
	c.mu.Lock()
	r, seen := c.refused[from]
	tell := !seen || now.Sub(r.at) >= c.opt.RefuseEvery
	ignored := r.ignored
	if tell {
		c.refused[from] = stranger{at: now}
	} else {
		r.ignored++
		c.refused[from] = r
	}
	c.mu.Unlock()
	if !tell {
		c.opt.Log.Debug("xmpp: ignored a chat from a stranger (refused already)", "from", full)
		return ""
	}
	c.opt.Log.Warn("xmpp: refused a chat from a stranger", "from", full, "ignored_since_last_refusal", ignored)
	return "Sorry, this is an SMS gateway for its own team only. Ask its administrator to add you."
}

// stranger is when one was last refused, and their chats ignored since.
type stranger struct {
	at      time.Time
	ignored int
}

// maxStrangers bounds the strangers remembered for RefuseEvery.
const maxStrangers = 10000

// forgetStale drops refusals older than RefuseEvery and long texts that
// were not confirmed in time.
func (c *Connector) forgetStale(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for j, r := range c.refused {
		if now.Sub(r.at) >= c.opt.RefuseEvery || len(c.refused) > maxStrangers {
			delete(c.refused, j)
		}
	}
	for j, p := range c.pending {
		if now.Sub(p.at) >= confirmWithin {
			delete(c.pending, j)
		}
	}
}

// command runs one chat of a user and is its answer.
func (c *Connector) command(ctx context.Context, from, role string, ch goxmpp.Chat, text string) string {
	word, rest := cut(text)
	lw := strings.ToLower(word)
	c.mu.Lock()
	p, hasPending := c.pending[from]
	delete(c.pending, from)
	c.mu.Unlock()
	switch {
	case lw == "yes" || lw == "confirm":
		if !hasPending || time.Since(p.at) >= confirmWithin {
			return "Nothing is waiting for a yes."
		}
		return c.submit(ctx, from, p.ch, p.req)
	case lw == "help" || lw == "?":
		return help(role)
	case word == "." || lw == "reply":
		return c.replyLast(ctx, from, ch, rest)
	case lw == "send":
		return c.send(ctx, from, role, ch, rest, true)
	case isAdminCommand(lw):
		if role != RoleAdmin {
			return fmt.Sprintf("%q is for admins. You can send SMS and answer them:\n%s", lw, userHelp)
		}
		return c.admin(ctx, from, lw, rest)
	}
	return c.send(ctx, from, role, ch, text, false)
}

func isAdminCommand(w string) bool {
	for _, a := range adminCommands {
		if w == a {
			return true
		}
	}
	return false
}

// cut splits off s's first word.
func cut(s string) (string, string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t\r\n")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i+1:])
}

// looksLikeAddress reports whether a word names SMS recipients.
func looksLikeAddress(w string) bool {
	if w == "" {
		return false
	}
	lw := strings.ToLower(w)
	return w[0] == '+' || '0' <= w[0] && w[0] <= '9' || strings.HasPrefix(lw, "group:") || strings.HasPrefix(lw, "topic:") || strings.HasPrefix(lw, "tel:")
}

// send sends the text after the recipients: one word of recipients
// (commas between several), or with several (the "send" command) every
// word that names recipients, or else a contact's name.
func (c *Connector) send(ctx context.Context, from, role string, ch goxmpp.Chat, text string, several bool) string {
	var to []string
	rest := text
	for {
		w, r := cut(rest)
		if !looksLikeAddress(w) {
			break
		}
		for _, a := range strings.Split(w, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			// A chat sends SMS only: another scheme after a comma
			// (xmpp:, mailto:, webhook:) would make Outpost a relay
			// to anyone, in its own name.
			if !looksLikeAddress(a) {
				return fmt.Sprintf("Not sent: %q is not a phone number, group:NAME or topic:NAME.", a)
			}
			to = append(to, a)
		}
		rest = r
		if !several && !strings.HasSuffix(w, ",") {
			break
		}
	}
	if len(to) == 0 {
		name, phone, r, err := c.contactPrefix(ctx, rest)
		if err != nil {
			return err.Error()
		}
		if name == "" {
			if several {
				return "Give the numbers, then the text: send +15555550100 +15555550101 your text"
			}
			return "I did not understand that.\n" + help(role)
		}
		if phone == "" {
			return fmt.Sprintf("%s has no phone number.", name)
		}
		to, rest = []string{phone}, r
	}
	if rest == "" {
		return "What should the SMS say? Write the number, then the text: " + to[0] + " your text"
	}
	req := bridge.SendRequest{To: to, Text: rest, Report: true, Source: c.Name(), From: "xmpp:" + from}
	return c.confirmOrSubmit(ctx, from, ch, req)
}

// maxNameWords bounds the words of a contact's name a chat may start with.
const maxNameWords = 5

// contactPrefix finds the contact whose name the text starts with (the
// longest such name): its name, first number and the rest of the text.
func (c *Connector) contactPrefix(ctx context.Context, text string) (name, phone, rest string, err error) {
	words := strings.Fields(text)
	for n := min(maxNameWords, len(words)-1); n >= 1; n-- {
		cand := strings.Join(words[:n], " ")
		ct, err := c.router.ShowContact(ctx, cand)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, bridge.ErrInvalid) {
			continue
		}
		if err != nil {
			return "", "", "", fmt.Errorf("cannot read the contacts: %v", err)
		}
		rest = text
		for range n {
			_, rest = cut(rest)
		}
		if len(ct.Phones) > 0 {
			phone = ct.Phones[0]
		}
		return ct.Name, phone, rest, nil
	}
	return "", "", "", nil
}

// replyLast answers the last SMS shown to the user.
func (c *Connector) replyLast(ctx context.Context, from string, ch goxmpp.Chat, text string) string {
	var phone, msgID string
	err := c.router.Store.View(ctx, func(tx *store.Tx) (err error) { phone, msgID, err = tx.XMPPLastShown(from); return })
	if errors.Is(err, store.ErrNotFound) {
		return "No SMS has been shown to you yet: write the number, then the text."
	}
	if err != nil {
		return "Cannot read the SMS you were shown: " + err.Error()
	}
	if text == "" {
		return "What should the answer to " + phone + " say? . your text"
	}
	req := bridge.SendRequest{To: []string{phone}, Text: text, Report: true, Source: c.Name(), From: "xmpp:" + from, InReplyTo: msgID}
	return c.confirmOrSubmit(ctx, from, ch, req)
}

// confirmOrSubmit submits req, or asks first when its text takes more
// than MaxParts parts.
func (c *Connector) confirmOrSubmit(ctx context.Context, from string, ch goxmpp.Chat, req bridge.SendRequest) string {
	if c.opt.Parts != nil {
		addrs, err := c.router.Expand(req.To)
		if err != nil {
			return strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")
		}
		for _, a := range addrs {
			if a.Scheme != bridge.SchemeTel {
				continue
			}
			n, err := c.opt.Parts(a.Value, req.Text)
			if err != nil {
				return "Cannot send that: " + err.Error()
			}
			if n > c.opt.MaxParts {
				c.mu.Lock()
				c.pending[from] = pendingSend{req: req, ch: ch, at: time.Now()}
				c.mu.Unlock()
				return fmt.Sprintf("That text takes %d SMS parts (%d characters), more than %d. Answer yes within %s to send it; anything else drops it.",
					n, utf8.RuneCountInString(req.Text), c.opt.MaxParts, confirmWithin)
			}
			break
		}
	}
	return c.submit(ctx, from, ch, req)
}

// submit stores the send request with the chat it came from (for its
// receipt) and the conversations it starts (the phones' answers come
// back to this user).
func (c *Connector) submit(ctx context.Context, from string, ch goxmpp.Chat, req bridge.SendRequest) string {
	var notes []string
	req.Notes = &notes
	sms := c.router.ConnectorFor(bridge.SchemeTel)
	id, err := c.router.SubmitTx(ctx, req, func(tx *store.Tx, m *store.Message) error {
		if err := tx.SetXMPPChat(m.ID, store.XMPPChat{JID: from, StanzaID: ch.ID, Receipt: receiptRequested(ch)}); err != nil {
			return err
		}
		ds, err := tx.Deliveries(m.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if sms != nil && d.Connector == sms.Name() {
				if err := tx.SetXMPPConversation(d.Recipient, from, tx.Now().Add(c.opt.ConversationTTL)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, bridge.ErrInvalid) {
			return "Not sent: " + strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")
		}
		c.opt.Log.Error("xmpp: cannot store a send request", "from", from, "err", err)
		return "Not sent: " + err.Error()
	}
	ans := "queued " + id
	notes = append(notes, c.router.GroupNotes(req.To)...)
	if len(notes) > 0 {
		ans += "\n" + strings.Join(notes, "\n")
	}
	return ans
}

// admin runs an admin command; --json at the end answers with the JSON
// the API gives.
func (c *Connector) admin(ctx context.Context, from, cmd, args string) string {
	asJSON := false
	if f := strings.Fields(args); len(f) > 0 && f[len(f)-1] == "--json" {
		asJSON = true
		args = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(args), "--json"))
	}
	arg, rest := cut(args)
	var res any
	var err error
	switch cmd {
	case "status":
		if c.opt.Status == nil {
			return "status is not available"
		}
		res, err = c.opt.Status(ctx)
	case "queue":
		res, err = c.messageOp(ctx, "messages", bridge.MessageRequest{Direction: "out", State: "queued", Limit: 20})
	case "show", "retry", "cancel":
		if arg == "" {
			return fmt.Sprintf("Which message? %s ID", cmd)
		}
		res, err = c.messageOp(ctx, cmd, bridge.MessageRequest{ID: arg})
	case "ban", "unban":
		if arg == "" {
			return fmt.Sprintf("Which number? %s +15555550100", cmd)
		}
		res, err = c.bans(ctx, from, cmd, bridge.BanRequest{Addr: arg, Reason: rest})
	case "audit":
		res, err = c.bans(ctx, from, "audit", bridge.BanRequest{Since: args})
	case "stats":
		res, err = c.router.StatsOf(ctx, bridge.StatsRequest{Number: arg})
	case "ussd":
		f := strings.Fields(rest)
		if arg == "" || len(f) == 0 {
			return "Which modem and code? ussd m1 *100# (then the answers to its menus, if any)"
		}
		b, _ := json.Marshal(bridge.USSDRequest{Modem: arg, Code: f[0], Answers: f[1:]})
		res, err = c.router.USSDOp(ctx, b)
		if bridge.IsOutage(err) {
			err = fmt.Errorf("%w: %v", bridge.ErrInvalid, err)
		}
	}
	if err != nil {
		if bridge.MessageOpRefused(err) {
			return cmd + ": " + strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")
		}
		c.opt.Log.Error("xmpp: admin command failed", "command", cmd, "from", from, "err", err)
		return cmd + " failed: " + err.Error()
	}
	if asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return cmd + " failed: " + err.Error()
		}
		return string(b)
	}
	return render(cmd, arg, res)
}

func (c *Connector) messageOp(ctx context.Context, op string, req bridge.MessageRequest) (any, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.router.MessageOp(ctx, op, b)
}

func (c *Connector) bans(ctx context.Context, from, op string, req bridge.BanRequest) (any, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ans, err := c.router.Bans(ctx, op, b, c.Name(), "xmpp:"+from)
	if err == nil && ans.Error != "" {
		err = fmt.Errorf("%w: %s", bridge.ErrInvalid, ans.Error)
	}
	return ans, err
}

// render writes an admin command's answer as short lines.
func render(cmd, arg string, res any) string {
	switch v := res.(type) {
	case bridge.MessagePage:
		if len(v.Messages) == 0 {
			return "Nothing is queued."
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d queued (oldest first; at most 20 shown):", len(v.Messages))
		for _, m := range v.Messages {
			fmt.Fprintf(&b, "\n%s to %s: %s", m.ID, m.Peer, clip(textOf(m.Text), 40))
		}
		return b.String()
	case bridge.MessageView:
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s, %s", v.ID, v.Direction, v.Peer, v.State)
		if v.Text != nil {
			fmt.Fprintf(&b, "\ntext: %s", clip(*v.Text, 200))
		}
		for _, d := range v.Deliveries {
			fmt.Fprintf(&b, "\n%s %s: %s (attempts %d)", d.Connector, d.Recipient, d.State, d.Attempts)
			if d.LastError != "" {
				fmt.Fprintf(&b, ", last error: %s", d.LastError)
			}
		}
		evs := v.Events
		if len(evs) > 10 {
			evs = evs[len(evs)-10:]
		}
		for _, e := range evs {
			fmt.Fprintf(&b, "\n%s %s %s", e.At.UTC().Format("2006-01-02 15:04:05"), e.State, e.Detail)
		}
		return b.String()
	case bridge.Managed:
		return fmt.Sprintf("%s %s: %s", cmd, arg, v.Summary)
	case bridge.USSDAnswer:
		var b strings.Builder
		for i, sc := range v.Screens {
			if i > 0 {
				b.WriteString("\n---\n")
			}
			fmt.Fprintf(&b, "%s\n(%s)", sc.Text, sc.State)
		}
		if v.Error != "" {
			fmt.Fprintf(&b, "\nussd failed: %s", v.Error)
		}
		return strings.TrimPrefix(b.String(), "\n")
	case bridge.BanAnswer:
		if cmd == "audit" {
			if len(v.Audit) == 0 {
				return "Nothing in the audit log since then."
			}
			es := v.Audit
			var b strings.Builder
			if len(es) > 20 {
				fmt.Fprintf(&b, "%d entries, the last 20:\n", len(es))
				es = es[len(es)-20:]
			}
			for i, e := range es {
				if i > 0 {
					b.WriteString("\n")
				}
				fmt.Fprintf(&b, "%s %s (%s) %s %s %s", e.At.UTC().Format("2006-01-02 15:04"), e.Who, e.Channel, e.Op, e.Target, e.Detail)
			}
			return b.String()
		}
		if !v.Changed {
			return fmt.Sprintf("%s: nothing to change (%s was %s already)", cmd, arg, map[string]string{"ban": "banned", "unban": "not banned"}[cmd])
		}
		return fmt.Sprintf("%s: done for %s", cmd, arg)
	}
	// Status and stats: their JSON as indented lines.
	b, err := json.Marshal(res)
	if err != nil {
		return err.Error()
	}
	var tree any
	json.Unmarshal(b, &tree)
	if m, ok := tree.(map[string]any); ok && cmd == "status" {
		return statusText(m)
	}
	var sb strings.Builder
	lines(&sb, "", tree)
	return strings.TrimSpace(sb.String())
}

// statusText is the daemon's status (GET /v1/status's JSON) in a few
// lines: each modem, the queues that hold something, the links, the
// store and the disk.
func statusText(st map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %v, up since %v", st["gateway_id"], st["version"], st["started_at"])
	obj := func(v any) map[string]any { m, _ := v.(map[string]any); return m }
	modems := obj(st["modems"])
	for _, id := range sortedKeys(modems) {
		m := obj(modems[id])
		fmt.Fprintf(&b, "\nmodem %s: %v", id, m["state"])
		if dbm, ok := m["signal_dbm"]; ok {
			fmt.Fprintf(&b, ", signal %v dBm", scalar(dbm))
		}
		if op, ok := m["operator"]; ok {
			fmt.Fprintf(&b, ", %v", op)
		}
		if reg, ok := m["registration"]; ok {
			fmt.Fprintf(&b, " (%v)", reg)
		}
		if e, ok := m["error"]; ok {
			fmt.Fprintf(&b, ", error: %v", e)
		}
		if bal := obj(m["balance"]); bal != nil {
			if a, ok := bal["amount"].(float64); ok {
				cur, _ := bal["currency"].(string)
				fmt.Fprintf(&b, ", balance %s", strings.TrimSpace(fmt.Sprintf("%.2f %s", a, cur)))
			}
			if p, ok := bal["paused"]; ok {
				fmt.Fprintf(&b, ", sending paused: %v", p)
			}
		}
	}
	if len(modems) == 0 {
		b.WriteString("\nno modem")
	}
	var qs []string
	queues := obj(st["queues"])
	for _, c := range sortedKeys(queues) {
		q := obj(queues[c])
		for _, state := range sortedKeys(q) {
			qs = append(qs, fmt.Sprintf("%s %s %v", c, state, scalar(q[state])))
		}
	}
	if len(qs) == 0 {
		qs = []string{"empty"}
	}
	fmt.Fprintf(&b, "\nqueues: %s", strings.Join(qs, ", "))
	links := obj(st["links"])
	for _, name := range sortedKeys(links) {
		l := obj(links[name])
		fmt.Fprintf(&b, "\nlink %s: %v", name, l["state"])
		if e, ok := l["error"]; ok {
			fmt.Fprintf(&b, " (%v)", e)
		}
	}
	if h := obj(st["hub_queue"]); h != nil && scalar(h["messages"]) != int64(0) {
		fmt.Fprintf(&b, "\nhub queue: %v messages", scalar(h["messages"]))
	}
	if s := obj(st["store"]); s != nil {
		fmt.Fprintf(&b, "\nstore: %s, WAL %s", size(s["db_bytes"]), size(s["wal_bytes"]))
	}
	if d := obj(st["disk"]); d != nil {
		fmt.Fprintf(&b, "\ndisk: %s free of %s", size(d["free_bytes"]), size(d["total_bytes"]))
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// size writes a JSON byte count for people.
func size(v any) string {
	f, _ := v.(float64)
	switch {
	case f >= 1<<30:
		return fmt.Sprintf("%.1f GiB", f/(1<<30))
	case f >= 1<<20:
		return fmt.Sprintf("%.1f MiB", f/(1<<20))
	case f >= 1<<10:
		return fmt.Sprintf("%.0f KiB", f/(1<<10))
	}
	return fmt.Sprintf("%.0f bytes", f)
}

// lines writes a JSON value as "key: value" lines, nested ones indented.
func lines(b *strings.Builder, indent string, v any) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch sub := t[k].(type) {
			case map[string]any, []any:
				if isEmpty(sub) {
					continue
				}
				fmt.Fprintf(b, "%s%s:\n", indent, k)
				lines(b, indent+"  ", sub)
			default:
				fmt.Fprintf(b, "%s%s: %v\n", indent, k, scalar(sub))
			}
		}
	case []any:
		for _, e := range t {
			switch e.(type) {
			case map[string]any, []any:
				fmt.Fprintf(b, "%s-\n", indent)
				lines(b, indent+"  ", e)
			default:
				fmt.Fprintf(b, "%s- %v\n", indent, scalar(e))
			}
		}
	}
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// scalar writes a JSON number without an exponent.
func scalar(v any) any {
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return int64(f)
	}
	return v
}

func textOf(p *string) string {
	if p == nil {
		return "(data)"
	}
	return *p
}

// clip is s on one line, at most n characters.
func clip(s string, n int) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
