package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/outpost-sms/outpost/store"
)

// PeopleOps are the operations on opt-outs and subscriptions, the same
// from every front end: the CLI (outpost optout …, outpost topic …),
// HTTP (POST /v1/people/<op>) and MQTT (admin/<op>, answered on
// admin/<op>/reply). Each takes a JSON object and answers PeopleAnswer.
var PeopleOps = []string{"optout-list", "optout-add", "optout-remove", "topic-list", "topic-subscribe", "topic-unsubscribe", "people-log"}

// PeopleRequest is the JSON of a people operation: "addr" (a phone
// number or tel:…, for topics also mailto:…), "topic".
type PeopleRequest struct {
	Addr  string `json:"addr,omitempty"`
	Topic string `json:"topic,omitempty"`
}

// PeopleAnswer is what a people operation answers.
type PeopleAnswer struct {
	OK bool `json:"ok"`
	// Changed is false when the operation found things already so (an
	// opt-out of a number already out, a subscription already there).
	Changed bool `json:"changed"`
	// Confirmation is the id of the message that confirms a subscription
	// change to the person; NoConfirmation says why none was sent.
	Confirmation   string               `json:"confirmation,omitempty"`
	NoConfirmation string               `json:"no_confirmation,omitempty"`
	OptOuts        []store.OptOut       `json:"optouts,omitempty"`
	Subscriptions  []store.Subscription `json:"subscriptions,omitempty"`
	Log            []store.PeopleChange `json:"log,omitempty"`
	Error          string               `json:"error,omitempty"`
}

// ErrUnknownOp is the error of an operation that is not a people one.
var ErrUnknownOp = errors.New("unknown operation")

// IsPeopleOp reports whether op is one of PeopleOps.
func IsPeopleOp(op string) bool { return slices.Contains(PeopleOps, op) }

// People runs a people operation (PeopleOps) given as JSON by a front end
// (channel: cli, http, mqtt). Changes are committed before it returns.
// A bad request is ErrInvalid with the reason.
func (h *Router) People(ctx context.Context, op string, body []byte, channel string) (PeopleAnswer, error) {
	if !IsPeopleOp(op) {
		return PeopleAnswer{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownOp, op, strings.Join(PeopleOps, ", "))
	}
	var req PeopleRequest
	body, by := takeBy(body) // who asks: on MQTT the client, "by" a detail
	ctx = WithBy(ctx, by)
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return PeopleAnswer{}, fmt.Errorf(`%w: bad JSON: %v (want {"addr": "+15555550100", "topic": "flood"})`, ErrInvalid, err)
		}
		if err := afterJSON(dec, body); err != nil {
			return PeopleAnswer{}, err
		}
	}
	var addr Address
	needAddr := op == "optout-add" || op == "optout-remove" || op == "topic-subscribe" || op == "topic-unsubscribe"
	if needAddr || req.Addr != "" {
		if req.Addr == "" {
			return PeopleAnswer{}, fmt.Errorf(`%w: "addr" is missing: give a phone number (+15555550100)`, ErrInvalid)
		}
		a, err := ParseAddress(req.Addr)
		if err != nil {
			return PeopleAnswer{}, fmt.Errorf(`%w: "addr": %v`, ErrInvalid, err)
		}
		switch {
		case a.Scheme != SchemeTel && a.Scheme != SchemeMailto:
			return PeopleAnswer{}, fmt.Errorf(`%w: "addr" %s: a subscriber is a phone number or a mailto: address`, ErrInvalid, a)
		}
		addr = a
	}
	topic := strings.ToLower(strings.TrimSpace(req.Topic))
	if op == "topic-subscribe" || op == "topic-unsubscribe" || topic != "" {
		if err := checkName(topic); err != nil {
			return PeopleAnswer{}, fmt.Errorf(`%w: "topic" %q: %v`, ErrInvalid, req.Topic, err)
		}
	}
	ans := PeopleAnswer{OK: true}
	read := func(tx *store.Tx) (err error) {
		switch op {
		case "optout-list":
			ans.OptOuts, err = tx.OptOuts()
		case "topic-list":
			ans.Subscriptions, err = tx.Subscriptions(topic)
		case "people-log":
			a := ""
			if req.Addr != "" {
				a = addr.String()
			}
			ans.Log, err = tx.PeopleLog(a, 0)
		}
		return err
	}
	switch op {
	case "optout-list", "topic-list", "people-log":
		return ans, h.Store.View(ctx, read)
	}
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		var text string
		switch op {
		case "optout-add":
			ans.Changed, err = tx.SetOptOut(store.OptOut{Addr: addr.String(), Channel: channel})
		case "optout-remove":
			ans.Changed, err = tx.ClearOptOut(addr.String(), "", channel)
		case "topic-subscribe":
			ans.Changed, err = tx.Subscribe(store.Subscription{Topic: topic, Addr: addr.String(), Channel: channel})
			text = h.keywordSet().JoinReply
		case "topic-unsubscribe":
			ans.Changed, err = tx.Unsubscribe(topic, addr.String(), "", channel)
			text = h.keywordSet().LeaveReply
		}
		if err != nil || !ans.Changed {
			return err
		}
		target := addr.String()
		if topic != "" {
			target += " " + topic
		}
		if err := h.audit(tx, store.AuditEntry{Who: callerOf(ctx, channel), Channel: channel, Op: op, Target: target}); err != nil {
			return err
		}
		if text == "" {
			return nil
		}
		// A subscription change is confirmed to the person, as by SMS.
		req := SendRequest{To: []string{addr.String()}, Text: strings.ReplaceAll(text, "{topic}", topic), Source: PeopleChannel,
			From: "api:" + channel, note: fmt.Sprintf("confirmation of %s %s by %s", op, topic, channel)}
		out, write, err := h.prepare(req)
		if err == nil {
			err = write(tx)
		}
		switch {
		case errors.Is(err, ErrInvalid):
			ans.NoConfirmation = strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
			return nil
		case err != nil:
			return err
		}
		ans.Confirmation = out.ID
		return nil
	})
	if err != nil {
		return PeopleAnswer{}, err
	}
	return ans, nil
}

// keywordSet is the default language's set.
func (h *Router) keywordSet() KeywordSet {
	if len(h.Keywords) == 0 {
		return KeywordSet{}
	}
	return h.Keywords[0]
}
