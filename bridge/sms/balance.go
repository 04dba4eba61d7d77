package sms

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
)

// BalanceCheck configures the credit check of one modem: a USSD code
// dialled every Every, the amount read from the answer with Regex; below
// Low (when > 0) the modem is low: Alert's addresses are told once per
// crossing and, with Pause, only alerts are sent through it until a check
// reads Low or more.
type BalanceCheck struct {
	Code  string
	Regex *regexp.Regexp
	Every time.Duration
	Low   float64
	Pause bool
	Alert []string
	// GatewayID names the box in the alert.
	GatewayID string
}

// DefaultBalanceRegex reads the balance from the answers of most
// operators: a word for it (balance, bal, credit, solde, saldo…), then
// the amount with its currency before or after ("Your balance is 123.45
// KES", "Bal: KES 50.00", "Credit: 12,50 EUR"). A regex of one's own
// names the amount's group "amount" (else the first group, else the whole
// match is it) and may name currency groups "currency…".
const DefaultBalanceRegex = `\b(?i:balance|bal|credit|solde|saldo|guthaben|airtime)\b\D{0,30}?` +
	`(?P<currency>[A-Z][A-Za-z]{1,3}|[$€£₦₹])?\s?(?P<amount>-?\d(?:[\d,.]*\d)?)\s?(?P<currency2>[A-Z][A-Za-z]{1,3}\b|[$€£₦₹])?`

// ParseBalance reads the amount, and the currency when re finds one, from
// an operator's answer.
func ParseBalance(re *regexp.Regexp, text string) (amount float64, currency string, ok bool) {
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, "", false
	}
	raw := m[0]
	if i := re.SubexpIndex("amount"); i > 0 {
		raw = m[i]
	} else if len(m) > 1 {
		raw = m[1]
	}
	for i, name := range re.SubexpNames() {
		if strings.HasPrefix(name, "currency") && m[i] != "" && currency == "" {
			currency = m[i]
		}
	}
	amount, err := parseAmount(raw)
	return amount, currency, err == nil
}

// parseAmount reads "1,234.50", "12,50", "1.234,50", "1 234" and the
// like: of '.' and ',' the last is the decimal point when both are there;
// one alone is a decimal point, unless it is ',' before three digits or
// there are several.
func parseAmount(s string) (float64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	dot, comma := strings.LastIndex(s, "."), strings.LastIndex(s, ",")
	switch {
	case dot >= 0 && comma >= 0:
		dec := max(dot, comma)
		s = strings.NewReplacer(".", "", ",", "").Replace(s[:dec]) + "." + s[dec+1:]
	case comma >= 0:
		if strings.Count(s, ",") == 1 && len(s)-comma-1 != 3 {
			s = strings.Replace(s, ",", ".", 1)
		} else {
			s = strings.ReplaceAll(s, ",", "")
		}
	case strings.Count(s, ".") > 1:
		s = strings.ReplaceAll(s, ".", "")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		// A regex of one's own may capture a word such as "NaN":
		// it is no amount, and would break the status's JSON.
		return 0, fmt.Errorf("%q is not an amount", s)
	}
	return f, err
}

// paused says why sends are held back from modem id ("" when they are not).
func (c *Connector) paused(id string) string {
	c.balMu.Lock()
	defer c.balMu.Unlock()
	return c.pause[id]
}

func (c *Connector) setPaused(id, why string) {
	c.balMu.Lock()
	was := c.pause[id]
	if c.pause == nil {
		c.pause = map[string]string{}
	}
	c.pause[id] = why
	c.balMu.Unlock()
	switch {
	case was == "" && why != "":
		c.Log.Warn("modem paused: only alerts are sent through it", "modem", id, "why", why)
	case was != "" && why == "":
		c.Log.Info("modem sends again", "modem", id)
		c.router.Wake(c.Name())
	}
}

// balanceLoops runs the balance check of every modem that has one.
func (c *Connector) balanceLoops(ctx context.Context) {
	done := make(chan struct{})
	n := 0
	for id, bc := range c.Balances {
		if _, ok := c.modems[id].(hw.USSDer); !ok {
			continue
		}
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			c.balanceLoop(ctx, id, bc)
		}()
	}
	for range n {
		<-done
	}
}

// balanceLoop shows the stored balance, then checks it once the modem is
// ready and every Every after (a minute after a failed check).
func (c *Connector) balanceLoop(ctx context.Context, id string, bc BalanceCheck) {
	var last store.ModemBalance
	err := c.Store.View(ctx, func(tx *store.Tx) (err error) { last, err = tx.ModemBalance(id); return err })
	if err == nil {
		c.showBalance(id, bc, last, "")
	}
	for {
		if !c.waitModem(ctx, id) {
			return
		}
		next := bc.Every
		if err := c.CheckBalance(ctx, id); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.Log.Warn("balance check failed", "modem", id, "err", err)
			next = min(next, time.Minute)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitModem waits until modem id can send; false when ctx ended.
func (c *Connector) waitModem(ctx context.Context, id string) bool {
	for {
		if st, err := c.modems[id].Status(ctx); err == nil && st.CanSend() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// CheckBalance reads modem id's balance now: the USSD code, the amount
// from the answer, stored, shown in the modem's status; below the modem's
// low_balance for the first time since it was above, its alert goes out
// (in the transaction that stores the reading: an alert that cannot be
// stored leaves the reading unstored, and the next check tries again).
func (c *Connector) CheckBalance(ctx context.Context, id string) error {
	bc, ok := c.Balances[id]
	if !ok {
		return fmt.Errorf("%w: modem %s has no balance_ussd", bridge.ErrInvalid, id)
	}
	u, ok := c.modems[id].(hw.USSDer)
	if !ok {
		return fmt.Errorf("%w: modem %s does not run USSD", bridge.ErrInvalid, id)
	}
	var prev store.ModemBalance
	err := c.Store.View(ctx, func(tx *store.Tx) (err error) { prev, err = tx.ModemBalance(id); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	screens, err := u.USSD(ctx, bc.Code, nil)
	if err == nil && len(screens) == 0 {
		err = errors.New("no answer")
	}
	if err != nil {
		c.showBalance(id, bc, prev, "balance check: "+err.Error())
		return err
	}
	text := screens[len(screens)-1].Text
	amount, currency, ok := ParseBalance(bc.Regex, text)
	if !ok {
		err := fmt.Errorf("no amount found in the answer to %s (balance_regex): %q", bc.Code, text)
		c.showBalance(id, bc, prev, err.Error())
		return err
	}
	rec := store.ModemBalance{Modem: id, Amount: &amount, Currency: currency, Text: text, Low: bc.Low > 0 && amount < bc.Low}
	alerted := false
	if rec.Low && !prev.Low && len(bc.Alert) > 0 {
		_, err = c.router.SubmitTx(ctx, c.alert(id, bc, rec), func(tx *store.Tx, _ *store.Message) error { return tx.SetModemBalance(rec) })
		alerted = err == nil
		if errors.Is(err, bridge.ErrInvalid) || errors.Is(err, bridge.ErrOptedOut) {
			// Refused (an address banned or opted out since the start):
			// trying again at every check would not help.
			c.Log.Error("low balance alert refused", "modem", id, "to", bc.Alert, "err", err)
			err = nil
		}
	}
	if err == nil && !alerted {
		err = c.Store.Update(ctx, func(tx *store.Tx) error { return tx.SetModemBalance(rec) })
	}
	if err != nil {
		c.showBalance(id, bc, prev, "balance not stored: "+err.Error())
		return err
	}
	rec.At = c.Store.Now()
	c.showBalance(id, bc, rec, "")
	c.Log.Info("balance read", "modem", id, "amount", amount, "currency", currency, "low", rec.Low)
	return nil
}

// alert is the send request that tells bc's addresses modem id is low.
func (c *Connector) alert(id string, bc BalanceCheck, b store.ModemBalance) bridge.SendRequest {
	text := fmt.Sprintf("Outpost %s: the balance of modem %s is %s, below %s (low_balance).", bc.GatewayID, id, money(b), strconv.FormatFloat(bc.Low, 'f', -1, 64))
	if bc.Pause {
		text += " Sending through it is paused until a balance check reads more."
	}
	text += " The network said: " + b.Text
	return bridge.SendRequest{To: bc.Alert, Text: text, Source: bridge.AlertChannel, By: "outpost", Priority: bridge.MaxPriority}
}

func money(b store.ModemBalance) string {
	if b.Amount == nil {
		return "unknown"
	}
	return strings.TrimSpace(strconv.FormatFloat(*b.Amount, 'f', 2, 64) + " " + b.Currency)
}

// showBalance puts b in the modem's status and pauses or resumes the
// modem by it; failed says why the last check failed.
func (c *Connector) showBalance(id string, bc BalanceCheck, b store.ModemBalance, failed string) {
	why := ""
	if b.Low && bc.Pause {
		why = fmt.Sprintf("balance %s is below low_balance %s", money(b), strconv.FormatFloat(bc.Low, 'f', -1, 64))
	}
	c.setPaused(id, why)
	if u, ok := c.modems[id].(hw.USSDer); ok {
		u.SetBalance(&hw.Balance{Amount: b.Amount, Currency: b.Currency, Text: b.Text, At: b.At, Low: b.Low, Paused: why, Error: failed})
	}
}

// USSD implements bridge.USSDRunner.
func (c *Connector) USSD(ctx context.Context, modem, code string, answers []string) ([]bridge.USSDScreen, error) {
	m, ok := c.modems[modem]
	if !ok {
		return nil, fmt.Errorf("%w: no modem %q (modems: %s)", bridge.ErrInvalid, modem, strings.Join(c.order, ", "))
	}
	u, ok := m.(hw.USSDer)
	if !ok {
		return nil, fmt.Errorf("%w: modem %s does not run USSD", bridge.ErrInvalid, modem)
	}
	replies, err := u.USSD(ctx, code, answers)
	screens := make([]bridge.USSDScreen, len(replies))
	for i, r := range replies {
		screens[i] = bridge.USSDScreen{Status: r.Status, State: r.StatusText(), Text: r.Text}
	}
	if errors.Is(err, hw.ErrNotReady) {
		err = bridge.Outage(err)
	}
	return screens, err
}
