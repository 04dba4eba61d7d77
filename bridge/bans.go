package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/outpost-sms/outpost/store"
)

// BanOps are the operations on bans and the audit log, the same from
// every front end: the CLI (outpost ban …, unban, audit), HTTP
// (/v1/bans, /v1/audit) and MQTT (admin/<op>, answered on
// admin/<op>/reply).
var BanOps = []string{"ban", "unban", "ban-list", "audit"}

// IsBanOp reports whether op is one of BanOps.
func IsBanOp(op string) bool { return slices.Contains(BanOps, op) }

// BanRequest is the JSON of a ban operation: "addr" (a phone number,
// tel:… or mailto:…), "reason" (ban), "by" (who asks; default the front
// end's caller); for audit "since" (1h or RFC 3339) and "who".
type BanRequest struct {
	Addr   string `json:"addr,omitempty"`
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
	Since  string `json:"since,omitempty"`
	Who    string `json:"who,omitempty"`
}

// BanAnswer is what a ban operation answers.
type BanAnswer struct {
	OK      bool               `json:"ok"`
	Changed bool               `json:"changed"`
	Bans    []store.Ban        `json:"bans,omitempty"`
	Audit   []store.AuditEntry `json:"audit,omitempty"`
	Error   string             `json:"error,omitempty"`
}

// looksBannable reports whether s is written as a phone number or a
// mailto: address (even a bad one, whose own error is then the answer).
func looksBannable(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return s != "" && (s[0] == '+' || s[0] == '(' || '0' <= s[0] && s[0] <= '9' || strings.HasPrefix(s, "tel:") || strings.HasPrefix(s, "mailto:"))
}

// Bans runs a ban operation (BanOps) given as JSON by a front end
// (channel: cli, http, mqtt; who: its caller, used when the request has
// no "by"). A ban or unban is committed, with its audit entry, before it
// returns. A bad request is ErrInvalid with the reason.
func (h *Router) Bans(ctx context.Context, op string, body []byte, channel, who string) (BanAnswer, error) {
	if !IsBanOp(op) {
		return BanAnswer{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownOp, op, strings.Join(BanOps, ", "))
	}
	var req BanRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return BanAnswer{}, fmt.Errorf(`%w: bad JSON: %v (want {"addr": "+15555550100", "reason": "spam"})`, ErrInvalid, err)
		}
		if err := afterJSON(dec, body); err != nil {
			return BanAnswer{}, err
		}
	}
	who = ClaimedBy(channel, who, req.By) // on MQTT a "by" is a detail, not who
	if len(who) > 2*MaxBy {
		who = strings.ToValidUTF8(who[:2*MaxBy], "")
	}
	if len(req.Reason) > 500 {
		return BanAnswer{}, fmt.Errorf(`%w: "reason" is %d bytes: at most 500`, ErrInvalid, len(req.Reason))
	}
	if err := checkText(req.Reason); err != nil {
		return BanAnswer{}, fmt.Errorf(`%w: "reason": %v`, ErrInvalid, err)
	}
	ans := BanAnswer{OK: true}
	switch op {
	case "ban-list":
		return ans, h.Store.View(ctx, func(tx *store.Tx) (err error) {
			ans.Bans, err = tx.Bans()
			return err
		})
	case "audit":
		since, err := ParseSince(req.Since, h.Store.Now())
		if err != nil {
			return BanAnswer{}, err
		}
		ans.Audit, err = h.AuditLog(ctx, AuditQuery{Since: since, Who: req.Who})
		return ans, err
	}
	if req.Addr == "" {
		return BanAnswer{}, fmt.Errorf(`%w: "addr" is missing: give a phone number (+15555550100)`, ErrInvalid)
	}
	a, err := ParseAddress(req.Addr)
	if err == nil && a.Scheme != SchemeTel && a.Scheme != SchemeMailto || err != nil && !looksBannable(req.Addr) {
		// Only what a ban takes is named, not every address a send does.
		return BanAnswer{}, fmt.Errorf(`%w: "addr" %q: a ban is of a phone number (+15555550100, tel:+15555550100) or a mailto: address (mailto:spam@example.org)`, ErrInvalid, strings.TrimSpace(req.Addr))
	}
	if err != nil {
		return BanAnswer{}, fmt.Errorf(`%w: "addr": %v`, ErrInvalid, err)
	}
	err = h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if op == "ban" {
			ans.Changed, err = tx.SetBan(store.Ban{Addr: a.String(), By: who, Channel: channel, Reason: req.Reason})
		} else {
			ans.Changed, err = tx.ClearBan(a.String())
		}
		if err != nil || !ans.Changed {
			return err
		}
		return h.audit(tx, store.AuditEntry{Who: who, Channel: channel, Op: op, Target: a.String(), Detail: req.Reason})
	})
	if err != nil {
		return BanAnswer{}, err
	}
	if ans.Changed {
		h.Log.Info(op, "addr", a.String(), "by", who, "channel", channel)
	}
	return ans, nil
}
