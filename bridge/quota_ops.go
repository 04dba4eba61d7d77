package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// QuotaRequest is the JSON of the quota operation: the source ("who", as
// the audit log names it; default the caller) and, optionally, a number.
type QuotaRequest struct {
	Who    string `json:"who,omitempty"`
	Number string `json:"number,omitempty"`
}

// QuotaAnswer is what the quota operation answers: a source's SMS in the
// last hour and day with its bounds (0: none) and the rule that gives
// them; a number's SMS in the last hour with its bound; whether the quiet
// hours are on now, and until when.
type QuotaAnswer struct {
	OK               bool      `json:"ok"`
	Who              string    `json:"who,omitempty"`
	Rule             string    `json:"rule,omitempty"`
	SMSLastHour      int       `json:"sms_last_hour"`
	SMSLastDay       int       `json:"sms_last_day"`
	SMSPerHour       int       `json:"sms_per_hour"`
	SMSPerDay        int       `json:"sms_per_day"`
	Number           string    `json:"number,omitempty"`
	NumberLastHour   *int      `json:"number_last_hour,omitempty"`
	PerNumberPerHour int       `json:"per_number_per_hour"`
	QuietHours       string    `json:"quiet_hours,omitempty"`
	QuietUntil       time.Time `json:"quiet_until,omitzero"`
	Error            string    `json:"error,omitempty"`
}

// QuotaOp is the quota operation, the same from every front end (the
// CLI's outpost quota, HTTP GET /v1/quota, MQTT admin/quota): body is a
// QuotaRequest (or nothing), who the caller as the audit log names it,
// used when the request names no one. It changes nothing. A bad request
// is ErrInvalid with the reason.
func (h *Router) QuotaOp(ctx context.Context, body []byte, who string) (QuotaAnswer, error) {
	var req QuotaRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return QuotaAnswer{}, fmt.Errorf(`%w: bad JSON: %v (want {"who": "mqtt:sensor-1", "number": "+15555550100"})`, ErrInvalid, err)
		}
	}
	if w := strings.TrimSpace(req.Who); w != "" {
		who = w
	}
	q := h.Quota
	ans := QuotaAnswer{OK: true, Who: who, PerNumberPerHour: q.PerNumberPerHour}
	ans.SMSPerHour, ans.SMSPerDay, ans.Rule = q.limits(who)
	var number Address
	if req.Number != "" {
		a, err := ParseAddress(req.Number)
		if err != nil || a.Scheme != SchemeTel {
			if err == nil {
				err = fmt.Errorf("%s is not a phone number", req.Number)
			}
			return QuotaAnswer{}, fmt.Errorf(`%w: "number": %v`, ErrInvalid, err)
		}
		number, ans.Number = a, a.Value
	}
	err := h.Store.View(ctx, func(tx *store.Tx) (err error) {
		now := tx.Now()
		if ans.SMSLastHour, err = tx.QuotaCount(store.QuotaSource, who, now.Add(-time.Hour)); err != nil {
			return err
		}
		if ans.SMSLastDay, err = tx.QuotaCount(store.QuotaSource, who, now.Add(-24*time.Hour)); err != nil {
			return err
		}
		if number.Value != "" {
			n, err := tx.QuotaCount(store.QuotaNumber, number.String(), now.Add(-time.Hour))
			ans.NumberLastHour = &n
			return err
		}
		return nil
	})
	if qh := q.Quiet; qh != nil {
		loc := qh.Loc
		if loc == nil {
			loc = time.Local
		}
		ans.QuietHours = fmt.Sprintf("%02d:%02d-%02d:%02d %s below %s", qh.Start/60, qh.Start%60, qh.End/60, qh.End%60, loc, PriorityName(qh.Priority))
		if end, quiet := qh.until(h.Store.Now()); quiet {
			ans.QuietUntil = end
		}
	}
	return ans, err
}
