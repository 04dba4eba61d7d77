package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/outpost-sms/outpost/store"
)

// AlertChannel is the channel of the messages Outpost sends about the box
// itself (a modem's credit running low): like a route's auto-reply, no
// quota or quiet hours hold them back.
const AlertChannel = "alert"

// USSDScreen is one screen of a USSD session: the network's text and the
// state it left the session in (+CUSD <m>: 0 done, 1 waiting for an
// answer, 2 ended by the network, 4 not supported, 5 timed out).
type USSDScreen struct {
	Status int    `json:"status"`
	State  string `json:"state"`
	Text   string `json:"text"`
}

// USSDRequest is the JSON of the ussd operation: the modem's id, the code
// to dial and the answers to the menus that follow, in order.
type USSDRequest struct {
	Modem   string   `json:"modem"`
	Code    string   `json:"code"`
	Answers []string `json:"answers,omitempty"`
}

// USSDAnswer is what the ussd operation answers: every screen the
// network sent, and, when the session failed, why (OK false).
type USSDAnswer struct {
	OK      bool         `json:"ok"`
	Modem   string       `json:"modem"`
	Code    string       `json:"code"`
	Screens []USSDScreen `json:"screens"`
	Error   string       `json:"error,omitempty"`
}

// USSDRunner is a connector that runs USSD sessions on its modems (the
// SMS connector). An unknown modem is ErrInvalid; a modem that cannot
// talk now is an Outage.
type USSDRunner interface {
	USSD(ctx context.Context, modem, code string, answers []string) ([]USSDScreen, error)
}

// maxUSSD bounds a USSD code or answer (a USSD string is at most 182
// characters; 160 leaves room for the modem's quoting).
const maxUSSD = 160

// USSDOp is the ussd operation, the same from every front end (the CLI's
// outpost ussd, HTTP POST /v1/modems/{id}/ussd, MQTT admin/ussd, XMPP's
// admins): body is a USSDRequest; who asks is ctx's caller (a "by" in
// the request is ClaimedBy's). The session is audited before it runs
// (the code and how many answers: answers may be PINs). A bad request is
// ErrInvalid, a modem that cannot talk now an Outage; a session the
// network refused or ended early is an answer with OK false.
func (h *Router) USSDOp(ctx context.Context, body []byte) (USSDAnswer, error) {
	var req USSDRequest
	by, err := DecodeAdminBy(body, &req)
	if err != nil {
		return USSDAnswer{}, err
	}
	ctx = WithBy(ctx, by)
	if strings.TrimSpace(req.Modem) == "" {
		return USSDAnswer{}, invalid(`"modem": the id of the modem to run the code on is needed`)
	}
	if err := checkUSSD("code", req.Code); err != nil {
		return USSDAnswer{}, err
	}
	for i, a := range req.Answers {
		if err := checkUSSD(fmt.Sprintf("answer %d", i+1), a); err != nil {
			return USSDAnswer{}, err
		}
	}
	r, ok := h.connector("sms").(USSDRunner)
	if !ok {
		return USSDAnswer{}, invalid("no modems run USSD here")
	}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error {
		return h.auditCtx(ctx, tx, "ussd", req.Modem, fmt.Sprintf("code %s, %d answer(s)", req.Code, len(req.Answers)))
	}); err != nil {
		return USSDAnswer{}, fmt.Errorf("audit: %w", err)
	}
	screens, err := r.USSD(ctx, req.Modem, req.Code, req.Answers)
	ans := USSDAnswer{OK: err == nil, Modem: req.Modem, Code: req.Code, Screens: screens}
	if ans.Screens == nil {
		ans.Screens = []USSDScreen{}
	}
	switch {
	case errors.Is(err, ErrInvalid), IsOutage(err):
		return USSDAnswer{}, err
	case err != nil:
		ans.Error = err.Error()
	}
	h.Log.Info("USSD session", slog.String("modem", req.Modem), slog.String("code", req.Code), slog.Int("screens", len(screens)),
		slog.String("by", callerOf(ctx, "api")), slog.String("err", ans.Error))
	return ans, nil
}

// checkUSSD refuses what cannot be a USSD string: it is written inside
// the quotes of an AT command, in plain ASCII.
func checkUSSD(what, s string) error {
	switch {
	case s == "":
		return invalid("%s: empty", what)
	case len(s) > maxUSSD:
		return invalid("%s: longer than %d characters", what, maxUSSD)
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '"' {
			return invalid("%s %q: only printable ASCII characters without '\"' can be sent", what, s)
		}
	}
	return nil
}

// CheckAlertAddress says what is wrong with an address alerts go to (a
// modem's low_balance_alert): one no registered connector delivers to, or
// a bad one. Call it once every connector is added.
func (h *Router) CheckAlertAddress(addr string) error {
	_, _, err := h.ruleTarget(addr)
	return err
}
