// Package sms is the SMS connector: it takes raw PDUs from the modems
// (hw), decodes them (pdu), stores parts and reassembles them in the store,
// hands whole messages to the hub, and only then tells the modem to delete
// or acknowledge them. It sends queued messages through a ready modem,
// recording every part's message reference, and turns status reports into
// delivery states.
package sms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/pdu"
	"github.com/outpost-sms/outpost/pdu/xform"
	"github.com/outpost-sms/outpost/store"
)

// Connector is the SMS connector.
type Connector struct {
	Store *store.Store
	Log   *slog.Logger
	// ReassemblyTimeout is how long an incomplete message waits for its
	// missing parts before it is delivered with them marked (default 24h).
	ReassemblyTimeout time.Duration
	// Languages maps number prefixes to the national language tables
	// (pdu.Language) messages to them may use.
	Languages map[string][]int
	// Forms configures the recognition of form submissions; nil turns
	// it off.
	Forms *FormOptions
	// CrashAt names a point at which to SIGKILL the process (tests only):
	// "after-commit-before-ack" or "after-cmgs-before-commit".
	CrashAt string
	// BeforeCommit, when set (tests only), runs inside the transaction of
	// every inbound message, part or status report: an error rolls it
	// back, as a full disk or a busy database would.
	BeforeCommit func() error
	// Balances are the credit checks of the modems that have one, by
	// modem id (balance.go).
	Balances map[string]BalanceCheck

	balMu sync.Mutex
	pause map[string]string // modem id → why only alerts go through it
	// Modems are the modems' routing options, by id (routing.go).
	Modems map[string]ModemOptions
	// Clock is the time the limits count in (nil: the box's).
	Clock Clock

	modems map[string]hw.Modem
	order  []string
	router *bridge.Router
	rt     sendState
}

// FormOptions configure form recognition.
type FormOptions struct {
	// Port, when not 0, is the application port forms are sent to: an
	// 8-bit SMS to it is a form (one that does not decode is kept raw
	// with its error), and one to another port is not looked at.
	Port int
	xform.Options
}

// New returns a connector on hub (its store and log) for the given modems
// (id → modem).
func New(router *bridge.Router, modems map[string]hw.Modem) *Connector {
	c := &Connector{Store: router.Store, Log: router.Log, ReassemblyTimeout: 24 * time.Hour, modems: modems, router: router}
	for id := range modems {
		c.order = append(c.order, id)
	}
	sort.Strings(c.order)
	return c
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return "sms" }

// Scheme implements bridge.Addressed: the SMS connector delivers to phone
// numbers (tel:+15555550100; a delivery's recipient is the bare number).
func (c *Connector) Scheme() string { return bridge.SchemeTel }

// ValidateAddress implements bridge.AddressValidator.
func (c *Connector) ValidateAddress(number string) error { return pdu.ValidateNumber(number) }

// fromAddr is the address of an inbound SMS's sender: tel:<number>, or
// empty when the sender is not a number (an alphanumeric sender id).
func fromAddr(peer string) string {
	if pdu.ValidateNumber(peer) != nil {
		return ""
	}
	return "tel:" + peer
}

// Validate implements bridge.Validator: every recipient must be a phone
// number and the message must encode.
func (c *Connector) Validate(req *bridge.SendRequest) error {
	for _, to := range req.To {
		if err := pdu.ValidateNumber(to); err != nil {
			return err
		}
	}
	_, err := (&pdu.Encoder{}).Encode(outgoing(req.To[0], req.Text, req.Data, req.Port, req.Validity, c.languagesFor(req.To[0])))
	return err
}

// Parts is how many SMS parts text takes to number (with the national
// language tables configured for it), or why it cannot be sent.
func (c *Connector) Parts(number, text string) (int, error) {
	ps, err := (&pdu.Encoder{}).Encode(outgoing(number, text, nil, 0, 0, c.languagesFor(number)))
	return len(ps), err
}

func outgoing(to, text string, data []byte, port int, validity time.Duration, langs []int) pdu.Outgoing {
	o := pdu.Outgoing{To: to, Text: text, Data: data, Validity: validity, Languages: langs}
	if port > 0 {
		o.Ports = &pdu.Ports{Dst: port}
	}
	return o
}

// validity is the validity period to ask of the SMSC: the message's own,
// or else, when it expires, the time left (at least the 5 minutes the
// relative format can say), so the network stops trying when we would.
func validity(m store.Message, now time.Time) time.Duration {
	if m.Validity != 0 || m.ExpiresAt.IsZero() {
		return m.Validity
	}
	left := m.ExpiresAt.Sub(now).Round(time.Minute)
	return min(max(left, 5*time.Minute), 441*24*time.Hour)
}

// languagesFor returns the national language tables of the longest
// configured prefix of number.
func (c *Connector) languagesFor(number string) []int {
	best := ""
	for p := range c.Languages {
		if strings.HasPrefix(number, p) && len(p) > len(best) {
			best = p
		}
	}
	return c.Languages[best]
}

// Run implements bridge.Connector: it reads every modem's messages until
// ctx ends.
func (c *Connector) Run(ctx context.Context, _ *bridge.Router) error {
	c.lanesInit()
	c.seedToday(ctx)
	// A clock set (NTP, GPS; a box without a real-time clock boots in
	// 1970) moves the stored times: the parts sent so far count for the
	// day the clock now says instead of being forgotten with the old one.
	c.Store.OnJump(func() {
		if ctx.Err() == nil {
			go c.seedToday(ctx)
		}
	})
	var wg sync.WaitGroup
	for _, id := range c.order {
		m := c.modems[id]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.receive(ctx, m)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.expireLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		c.balanceLoops(ctx)
	}()
	wg.Wait()
	return nil
}

func (c *Connector) receive(ctx context.Context, m hw.Modem) {
	for {
		select {
		case <-ctx.Done():
			return
		case in, ok := <-m.Incoming():
			if !ok {
				return
			}
			key, err := c.HandleInbound(ctx, in)
			if err != nil {
				// Not committed: leave it on the SIM; the next sweep
				// hands it up again.
				c.Log.Error("inbound message not stored; left on the modem", "modem", in.Modem, "slot", in.Slot, "err", err)
				m.Release(in)
				continue
			}
			c.crash("after-commit-before-ack")
			if err := m.Ack(ctx, in); err != nil {
				c.Log.Warn("inbound message stored but not deleted from the modem; the next sweep reads it again, recognises it and deletes it", "modem", in.Modem, "slot", in.Slot, "err", err)
				continue
			}
			if key != "" {
				if err := c.Store.Update(ctx, func(tx *store.Tx) error { return tx.ReleaseDedupKey(key) }); err != nil {
					c.Log.Warn("release de-duplication key", "key", key, "err", err)
				}
			}
		}
	}
}

// HandleInbound decodes and commits one raw message. It returns nil once
// the message (or its part, or its effect as a status report) is durably
// stored, including when it was a duplicate. The key it returns, when not
// empty, recognises a re-read of the same message until the modem has
// acknowledged it; release it (store.Tx.ReleaseDedupKey) after the Ack.
func (c *Connector) HandleInbound(ctx context.Context, in hw.Inbound) (string, error) {
	if in.Call != nil {
		return c.storeCall(ctx, in)
	}
	m, err := pdu.Decode(in.PDU)
	if err != nil {
		return c.storeUndecodable(ctx, in, err)
	}
	switch m.Type {
	case pdu.StatusReport:
		return "", c.statusReport(ctx, in, m)
	case pdu.Submit:
		c.Log.Info("ignoring a stored SMS-SUBMIT handed up as inbound", "modem", in.Modem, "slot", in.Slot)
		return "", nil
	}
	if !m.IsPart() {
		msg, err := c.storeWhole(ctx, in.Modem, m)
		return msg.DedupKey, err
	}
	// Parts are recognised by their group (sender, reference) and bytes.
	return "", c.storePart(ctx, in, m)
}

// inbound commits what f writes of one inbound message, running
// BeforeCommit first.
func (c *Connector) inbound(ctx context.Context, f func(tx *store.Tx) error) error {
	return c.Store.Update(ctx, func(tx *store.Tx) error {
		if c.BeforeCommit != nil {
			if err := c.BeforeCommit(); err != nil {
				return err
			}
		}
		return f(tx)
	})
}

func (c *Connector) storeUndecodable(ctx context.Context, in hw.Inbound, decodeErr error) (string, error) {
	sum := sha256.Sum256(in.PDU)
	msg := &store.Message{
		Peer: "unknown", Modem: in.Modem, Data: in.PDU, Coding: "raw", State: store.Undecodable,
		Detail: decodeErr.Error(), Source: "sms", Channel: "sms", Kind: store.KindData, DedupKey: in.Modem + "|raw|" + hex.EncodeToString(sum[:16]),
	}
	c.Log.Warn("undecodable PDU kept raw", "modem", in.Modem, "slot", in.Slot, "err", decodeErr)
	err := c.inbound(ctx, func(tx *store.Tx) error {
		return c.router.StoreInbound(tx, msg, "undecodable: "+decodeErr.Error())
	})
	if errors.Is(err, store.ErrDuplicate) {
		err = nil
	}
	return msg.DedupKey, err
}

// storeWhole stores a one-part message.
func (c *Connector) storeWhole(ctx context.Context, modem string, m *pdu.Message) (*store.Message, error) {
	var msg *store.Message
	var dup bool
	err := c.inbound(ctx, func(tx *store.Tx) (err error) {
		msg, dup, err = c.storeParts(tx, modem, "", []*pdu.Message{m})
		return err
	})
	if err == nil {
		c.logStored(modem, msg, dup)
	}
	if msg == nil {
		msg = &store.Message{}
	}
	return msg, err
}

// storeParts stores, inside tx, the message made of parts (all of a
// group's, or those there are when its time is up) and, when groupKey is
// set, marks the group's parts as finished. dup reports a message already
// stored under the same de-duplication key: then only the parts are
// marked.
func (c *Connector) storeParts(tx *store.Tx, modem, groupKey string, parts []*pdu.Message) (msg *store.Message, dup bool, err error) {
	j, err := pdu.Join(parts)
	if err != nil {
		return nil, false, err
	}
	msg = c.wholeMessage(modem, parts, j)
	if groupKey != "" {
		if err := tx.FinishParts(groupKey, msg.ID); err != nil {
			return nil, false, err
		}
	}
	err = c.router.StoreInbound(tx, msg, fmt.Sprintf("%d part(s) via %s", j.Parts, modem))
	if errors.Is(err, store.ErrDuplicate) {
		return msg, true, nil
	}
	return msg, false, err
}

// storeGroup stores, inside tx, the message made of a group's open parts.
// It returns nil when the group has none left.
func (c *Connector) storeGroup(tx *store.Tx, modem, groupKey string) (*store.Message, bool, error) {
	open, err := tx.OpenParts(groupKey)
	if err != nil || len(open) == 0 {
		return nil, false, err
	}
	return c.storeOpen(tx, modem, groupKey, open)
}

// storeOpen is storeGroup on parts already read.
func (c *Connector) storeOpen(tx *store.Tx, modem, groupKey string, open []store.InboundPart) (*store.Message, bool, error) {
	parts, err := decodeParts(open)
	if err != nil {
		return nil, false, err
	}
	return c.storeParts(tx, modem, groupKey, parts)
}

func (c *Connector) logStored(modem string, msg *store.Message, dup bool) {
	switch {
	case msg == nil:
	case dup:
		c.Log.Info("duplicate inbound message ignored", "modem", modem, "msg_id", msg.ID)
	default:
		c.Log.Info("received", "modem", modem, "msg_id", msg.ID, "from", msg.Peer, "parts", msg.Parts, "state", msg.State)
	}
}

func (c *Connector) wholeMessage(modem string, parts []*pdu.Message, j pdu.Joined) *store.Message {
	first := parts[0]
	// The sender in its one form (a national number the network gives,
	// 0712…, is +254712… with [sms] country_code), as every comparison
	// reads numbers: answers, quotas, statistics and searches find it.
	peer := first.Number
	if p, err := bridge.CanonicalPhone(peer); err == nil {
		peer = p
	}
	msg := &store.Message{
		ID: store.NewID(), Peer: peer, Modem: modem, Coding: j.Coding, Parts: j.Parts, SMSC: first.SMSC,
		Flash: first.Class == 0, Source: "sms", State: store.Complete, DedupKey: pdu.DedupKey(modem, parts),
		Channel: "sms", FromAddr: fromAddr(peer),
	}
	if !first.Timestamp.IsZero() {
		msg.SCTS = first.Timestamp.Format(time.RFC3339)
	}
	if j.IsText {
		msg.Text = &j.Text
	} else {
		msg.Data = j.Data
	}
	if len(j.Missing) > 0 {
		msg.State = store.Incomplete
		msg.Detail = fmt.Sprintf("parts %v of %d never arrived", j.Missing, j.Parts)
	}
	c.recognizeForm(msg, first)
	return msg
}

// recognizeForm turns a message that carries a form submission into one:
// Text becomes the instance XML, Data keeps the payload as it came, and
// the form and instance ids are set, so the hub routes it to the form's
// destinations. A message that looks like a form but does not decode
// stays a message, marked undecodable with the error, for a person to
// see; anything else is left alone.
func (c *Connector) recognizeForm(msg *store.Message, first *pdu.Message) {
	if c.Forms == nil {
		return
	}
	port := 0
	if first.UDH != nil && first.UDH.Ports != nil {
		port = first.UDH.Ports.Dst
	}
	var inst *xform.Instance
	var err error
	var payload []byte
	switch {
	case msg.Data != nil:
		toFormPort := c.Forms.Port != 0 && port == c.Forms.Port
		if c.Forms.Port != 0 && port != 0 && !toFormPort {
			return // for another application
		}
		payload = msg.Data
		inst, err = xform.Decode(payload, c.Forms.Options)
		// Without a form port, a payload for some application port (a
		// WAP push, say) is a form only if it decodes as one.
		if err != nil && !toFormPort && (port != 0 || errors.Is(err, xform.ErrNotForm) || !xform.LooksLikeForm(payload)) {
			return
		}
	case msg.Text != nil:
		payload = []byte(*msg.Text)
		inst, err = xform.DecodeText(*msg.Text, msg.DedupKey, c.Forms.Options)
		if errors.Is(err, xform.ErrNotForm) {
			return
		}
		// "<3 see you" is a person's text, not broken XML.
		if err != nil && !errors.Is(err, xform.ErrCompact) && !strings.HasPrefix(strings.TrimSpace(*msg.Text), "<?xml") {
			return
		}
	default:
		return
	}
	if err != nil {
		c.Log.Warn("form payload does not decode; kept raw for a person to look at", "from", msg.Peer, "err", err)
		if msg.State == store.Complete {
			msg.State = store.Undecodable
		}
		msg.Detail = strings.TrimPrefix(msg.Detail+"; ", "; ") + "looks like a form submission but does not decode: " + err.Error()
		return
	}
	xml := string(inst.XML)
	msg.Text, msg.Data, msg.Coding = &xml, payload, "xform"
	msg.FormID, msg.InstanceID = inst.FormID, inst.InstanceID
	detail := "form " + inst.FormID + ", " + inst.Format
	if inst.Compression != "" {
		detail += " in " + inst.Compression
	}
	for _, n := range inst.Notes {
		detail += "; " + n
	}
	msg.Detail = strings.TrimPrefix(msg.Detail+"; ", "; ") + detail
}

// storePart stores one part; when it completes its message, the message is
// stored in the same transaction.
func (c *Connector) storePart(ctx context.Context, in hw.Inbound, m *pdu.Message) error {
	key := pdu.GroupKey(in.Modem, m)
	var msg *store.Message
	var dup bool
	err := c.inbound(ctx, func(tx *store.Tx) error {
		msg, dup = nil, false
		seen, err := tx.AddInboundPart(store.InboundPart{GroupKey: key, Seq: m.UDH.Concat.Seq, Total: m.UDH.Concat.Total, PDU: m.TPDU})
		if err != nil || seen {
			return err
		}
		open, err := tx.OpenParts(key)
		if err != nil || len(open) < m.UDH.Concat.Total {
			return err
		}
		msg, dup, err = c.storeOpen(tx, in.Modem, key, open)
		return err
	})
	if err == nil {
		c.logStored(in.Modem, msg, dup)
	}
	return err
}

func decodeParts(open []store.InboundPart) ([]*pdu.Message, error) {
	parts := make([]*pdu.Message, 0, len(open))
	for _, p := range open {
		m, err := pdu.DecodeTPDU(p.PDU)
		if err != nil {
			return nil, fmt.Errorf("stored part %d of %s: %w", p.Seq, p.GroupKey, err)
		}
		parts = append(parts, m)
	}
	return parts, nil
}

// expireLoop delivers messages whose missing parts did not come in time.
func (c *Connector) expireLoop(ctx context.Context) {
	// Look often enough that a message is delivered soon after its time
	// is up, also with a short timeout.
	tick := min(time.Minute, max(c.ReassemblyTimeout/4, 250*time.Millisecond))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		c.ExpireIncomplete(ctx)
		var n int64
		c.Store.Update(ctx, func(tx *store.Tx) (err error) {
			n, err = tx.ForgetOrphanReports(tx.Now().Add(-time.Hour))
			return err
		})
		if n > 0 {
			c.Log.Warn("status reports for messages this gateway never recorded were dropped", "count", n)
		}
		// Parts of finished messages serve only to recognise a part read
		// twice before the modem deleted it: a day is plenty.
		c.Store.Update(ctx, func(tx *store.Tx) (err error) {
			_, err = tx.ForgetFinishedParts(tx.Now().Add(-24 * time.Hour))
			return err
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireIncomplete stores, with their missing parts marked, the messages
// whose newest part is older than the reassembly timeout. Each is read and
// stored in one transaction, so a part that comes at that moment is in it
// or starts a new group.
func (c *Connector) ExpireIncomplete(ctx context.Context) {
	var keys []string
	c.Store.View(ctx, func(tx *store.Tx) (err error) {
		keys, err = tx.StaleGroups(tx.Now().Add(-c.ReassemblyTimeout))
		return err
	})
	for _, key := range keys {
		modem := strings.SplitN(key, "|", 2)[0]
		var msg *store.Message
		var dup bool
		err := c.Store.Update(ctx, func(tx *store.Tx) (err error) {
			msg, dup, err = c.storeGroup(tx, modem, key)
			return err
		})
		if err != nil {
			c.Log.Error("cannot store incomplete message", "group", key, "err", err)
			continue
		}
		c.logStored(modem, msg, dup)
	}
}

// statusReport matches a report to the part it is about and updates the
// delivery: delivered when every part is. A report that matches no part
// yet is kept: it may have overtaken the commit of its own +CMGS.
func (c *Connector) statusReport(ctx context.Context, in hw.Inbound, m *pdu.Message) error {
	orphan := false
	err := c.inbound(ctx, func(tx *store.Tx) error {
		orphan = false
		p, err := tx.MatchSentPart(in.Modem, m.MessageReference, m.Number)
		if errors.Is(err, store.ErrNotFound) {
			orphan = true
			return tx.AddOrphanReport(in.Modem, m.MessageReference, m.Number, m.Status)
		}
		if err != nil {
			return err
		}
		return c.applyReport(tx, p, m.Status)
	})
	if err == nil && orphan {
		c.Log.Info("status report for no part recorded yet; kept for a while", "modem", in.Modem, "mr", m.MessageReference, "to", m.Number, "status", m.Status)
	}
	return err
}

// orphanWindow is how long before its part is recorded a status report
// may have arrived and still be matched to it.
const orphanWindow = time.Minute

// applyReport records a report's TP-ST on its part and moves the delivery
// on when the report settles it.
func (c *Connector) applyReport(tx *store.Tx, p store.SentPart, status int) error {
	outcome, final := pdu.ReportOutcome(status)
	text := pdu.StatusText(status)
	d, err := tx.Delivery(p.DeliveryID)
	if err != nil {
		return err
	}
	partState := store.Sent
	switch {
	case final && outcome == pdu.ReportDelivered:
		partState = store.Delivered
	case final:
		partState = store.Failed
	}
	if err := tx.SetSentPartState(p.DeliveryID, p.Seq, partState, status); err != nil {
		return err
	}
	detail := fmt.Sprintf("part %d/%d: %s (TP-ST %d)", p.Seq, p.Total, text, status)
	if d.State == store.Delivered || d.State == store.Failed || d.State == store.Expired || d.State == store.Cancelled {
		return tx.AppendEvent(d.MessageID, d.ID, d.State, "late report: "+detail)
	}
	parts, err := tx.SentParts(p.DeliveryID)
	if err != nil {
		return err
	}
	delivered := 0
	for _, sp := range parts {
		if sp.State == store.Delivered {
			delivered++
		}
	}
	switch {
	case partState == store.Failed:
		_, err = c.router.Transition(tx, d.ID, store.Transition{State: store.Failed, Detail: detail, LastError: text})
	case delivered == p.Total:
		_, err = c.router.Transition(tx, d.ID, store.Transition{State: store.Delivered, Detail: detail})
	default:
		err = tx.AppendEvent(d.MessageID, d.ID, d.State, detail)
	}
	return err
}

// refs allocates the concatenation reference of one delivery.
type refs struct {
	ctx   context.Context
	store *store.Store
	id    int64
}

func (r refs) NextConcatRef() (n int, err error) {
	err = r.store.Update(r.ctx, func(tx *store.Tx) (err error) {
		n, err = tx.ConcatRef(r.id, "concat_ref", 255)
		return err
	})
	return n, err
}

// Deliver implements bridge.Connector: it sends the parts not yet accepted
// by a modem, recording each part's reference as soon as the modem gives
// it, so a retry or a restart does not send them again.
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	text := ""
	if m.Text != nil {
		text = *m.Text
	}
	out := outgoing(d.Recipient, text, m.Data, m.Port, validity(m, time.Now()), c.languagesFor(d.Recipient))
	out.Report, out.Flash = m.Report, m.Flash
	enc := pdu.Encoder{Refs: refs{ctx, c.Store, d.ID}}
	parts, err := enc.Encode(out)
	if err != nil {
		return bridge.Outcome{}, bridge.Permanent(err)
	}
	var done []store.SentPart
	prefer := ""
	if err := c.Store.View(ctx, func(tx *store.Tx) (err error) {
		if done, err = tx.SentParts(d.ID); err != nil {
			return err
		}
		prefer, err = tx.ReplyModem(m.ID)
		return err
	}); err != nil {
		return bridge.Outcome{}, err
	}
	sent := map[int]bool{}
	pk := pick{to: d.Recipient, prefer: prefer, exclude: map[string]bool{}, alert: m.Channel == bridge.AlertChannel}
	if m.Direction == store.Out {
		pk.forced = m.Modem
	}
	if _, ok := c.modems[pk.forced]; pk.forced != "" && !ok {
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("modem %s, which the message must go out through, is no longer configured: send it again through another", pk.forced))
	}
	if pk.forced != "" && c.Modems[pk.forced].ReceiveOnly {
		// Made receive-only since (send = false and a restart): waiting
		// for it would be waiting forever.
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("modem %s, which the message must go out through, is receive-only (send = false): send it again through another", pk.forced))
	}
	for _, p := range done {
		sent[p.Seq] = true
		// The parts of one message go out from one number, or the phone
		// cannot join them (unless that modem is gone from the config or
		// sends no more).
		if _, ok := c.modems[p.Modem]; ok && !c.Modems[p.Modem].ReceiveOnly {
			pk.stick = p.Modem
		}
	}
	var mrs, moved []string
	var lastErr error // of the last modem the part was moved from
	via := pk.stick
	for _, p := range parts {
		if sent[p.Seq] {
			continue
		}
		for {
			modemID, modem, err := c.acquire(ctx, pk)
			switch {
			case err != nil && lastErr != nil && bridge.IsOutage(err):
				return bridge.Outcome{}, bridge.Outage(fmt.Errorf("%w; no other modem can take it", lastErr))
			case err != nil && len(moved) > 0:
				return bridge.Outcome{}, fmt.Errorf("%w (after %s)", err, strings.Join(moved, "; "))
			case err != nil:
				return bridge.Outcome{}, err
			}
			c.jitter(ctx, modemID)
			mr, err := modem.SendPDU(ctx, p.TPDU)
			c.release(modemID, err)
			if err != nil {
				err = fmt.Errorf("send part %d/%d to %s via %s: %w", p.Seq, p.Total, d.Recipient, modemID, err)
				cls := hw.Classify(err)
				if cls == hw.Outage && pk.forced == "" && pk.stick == "" && ctx.Err() == nil {
					// Not the message's fault: another modem may take it.
					// No answer does not prove the part did not go out:
					// as after any retry, it may arrive twice.
					pk.exclude[modemID], lastErr = true, err
					why := fmt.Sprintf("%s failed (%v)", modemID, errors.Unwrap(err))
					moved = append(moved, why)
					c.Log.Warn("part not sent through a modem; trying another", "msg_id", d.MessageID, "modem", modemID, "err", err)
					c.event(ctx, d, fmt.Sprintf("part %d/%d not sent through %s: %v; trying another modem", p.Seq, p.Total, modemID, errors.Unwrap(err)))
					continue
				}
				switch {
				case cls == hw.Permanent:
					return bridge.Outcome{}, bridge.Permanent(err)
				case cls == hw.Outage && (pk.forced != "" || pk.stick != ""):
					// Only this modem will do: the message waits for it
					// while the other modems' messages go.
					return bridge.Outcome{}, bridge.Unavailable(err, c.failWait(modemID))
				case cls == hw.Outage:
					return bridge.Outcome{}, bridge.Outage(err)
				}
				return bridge.Outcome{}, err
			}
			c.crash("after-cmgs-before-commit")
			mrs = append(mrs, fmt.Sprint(mr))
			pk.stick, via = modemID, modemID
			sp := store.SentPart{DeliveryID: d.ID, Seq: p.Seq, Total: p.Total, Modem: modemID, MR: mr, Recipient: d.Recipient}
			if err := c.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
				if err := tx.RecordSentPart(sp); err != nil {
					return err
				}
				if err := tx.AppendEvent(d.MessageID, d.ID, store.Sending, fmt.Sprintf("part %d/%d accepted by %s, reference %d", p.Seq, p.Total, modemID, mr)); err != nil {
					return err
				}
				st, ok, err := tx.TakeOrphanReport(modemID, mr, d.Recipient, tx.Now().Add(-orphanWindow))
				if err != nil || !ok {
					return err
				}
				return c.applyReport(tx, sp, st)
			}); err != nil {
				return bridge.Outcome{}, fmt.Errorf("record part %d/%d: %w", p.Seq, p.Total, err)
			}
			break
		}
	}
	detail := fmt.Sprintf("%d part(s) via %s, references %s", len(parts), via, strings.Join(mrs, ","))
	if len(moved) > 0 {
		detail += "; moved after " + strings.Join(moved, "; ")
	}
	return bridge.Outcome{State: store.Sent, Detail: detail}, nil
}

// event adds a line to a delivery's history.
func (c *Connector) event(ctx context.Context, d store.Delivery, detail string) {
	if err := c.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		return tx.AppendEvent(d.MessageID, d.ID, store.Sending, detail)
	}); err != nil {
		c.Log.Warn("history of a delivery", "msg_id", d.MessageID, "err", err)
	}
}

// WaitReady implements bridge.Waiter: it returns once a modem may take a
// part (ready, registered, not rested, within its limits), so that the
// dispatcher claims nothing while none can.
func (c *Connector) WaitReady(ctx context.Context) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if c.canSendSome(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// crash kills the process at a named point when CrashAt names it: the
// tests use it to stop the daemon at the moments where a crash is most
// dangerous. SIGKILL, so nothing is flushed or cleaned up.
func (c *Connector) crash(point string) {
	if c.CrashAt == point {
		c.Log.Warn("crashing on purpose", "point", point)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
