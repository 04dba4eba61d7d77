package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bhttp "github.com/outpost-sms/outpost/bridge/http"
	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/config"
	"github.com/outpost-sms/outpost/hw/sim"
)

// cmdUSSD runs a USSD session through a modem of the daemon and prints
// each screen.
func cmdUSSD(args []string) int {
	fs := flag.NewFlagSet("ussd", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: outpost ussd MODEM CODE [ANSWER…]

Dials the USSD CODE (such as '*100#') on MODEM and prints the network's
answer; each ANSWER answers the next menu ('outpost ussd m1 '*123#' 2 1'
answers 2 to the first menu, then 1). SMS go on through the modem
meanwhile. Exits 1 when the network refused or ended the session early.`)
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 2, 22)
	if code >= 0 {
		return code
	}
	// Each screen may take the network half a minute.
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	c, err := mk()
	if err != nil {
		return fail("ussd", err)
	}
	if !timeoutSet {
		c.http.Timeout = time.Duration(len(pos)) * 45 * time.Second
	}
	body, _ := json.Marshal(map[string]any{"code": pos[1], "answers": pos[2:]})
	req, _ := http.NewRequest("POST", "http://outpost/v1/modems/"+url.PathEscape(pos[0])+"/ussd", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(bhttp.ChannelHeader, "cli")
	req.Header.Set(bhttp.ByHeader, cliBy())
	resp, err := c.http.Do(req)
	if err != nil {
		return fail("ussd", c.doErr(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans bridge.USSDAnswer
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadGateway || json.Unmarshal(b, &ans) != nil {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fail("ussd", errors.New(e.Error))
		}
		return fail("ussd", fmt.Errorf("%s: %s", resp.Status, b))
	}
	if *asJSON {
		os.Stdout.Write(b)
	} else {
		for i, s := range ans.Screens {
			if i > 0 {
				fmt.Printf("> %s\n", pos[1+i])
			}
			fmt.Printf("%s\n(%s)\n", printable(s.Text, true), s.State)
		}
	}
	if !ans.OK {
		return fail("ussd", errors.New(ans.Error))
	}
	return 0
}

// balanceChecks are the modems' credit checks, from their balance keys.
func balanceChecks(cfg config.Config) (map[string]bsms.BalanceCheck, error) {
	out := map[string]bsms.BalanceCheck{}
	for _, m := range cfg.Modems {
		if m.BalanceUSSD == "" {
			continue
		}
		expr := m.BalanceRegex
		if expr == "" {
			expr = bsms.DefaultBalanceRegex
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("modem %s: balance_regex: %w", m.ID, err)
		}
		out[m.ID] = bsms.BalanceCheck{Code: m.BalanceUSSD, Regex: re, Every: m.BalanceEvery.Duration, Low: m.LowBalance,
			Pause: m.PauseOnLowBalance, Alert: m.LowBalanceAlert, GatewayID: cfg.GatewayID}
	}
	return out, nil
}

// checkAlerts says which low_balance_alert addresses no connector
// delivers to (call once every connector is added).
func checkAlerts(cfg config.Config, router *bridge.Router) error {
	var errs []error
	for _, m := range cfg.Modems {
		for _, a := range m.LowBalanceAlert {
			if err := router.CheckAlertAddress(a); err != nil {
				errs = append(errs, fmt.Errorf("modem %s: low_balance_alert %q: %v", m.ID, a, err))
			}
		}
	}
	return errors.Join(errs...)
}

// balanceLine is a modem's balance as status prints it ("" when none).
func balanceLine(raw json.RawMessage) string {
	var m struct {
		Balance *struct {
			Amount   *float64  `json:"amount"`
			Currency string    `json:"currency"`
			At       time.Time `json:"at"`
			Low      bool      `json:"low"`
			Paused   string    `json:"paused"`
			Error    string    `json:"error"`
		} `json:"balance"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Balance == nil {
		return ""
	}
	b := m.Balance
	var parts []string
	if b.Amount != nil {
		s := strings.TrimSpace(strconv.FormatFloat(*b.Amount, 'f', 2, 64) + " " + printable(b.Currency, false))
		if !b.At.IsZero() {
			s += ", read " + b.At.Local().Format(time.DateTime)
		}
		if b.Low {
			s += ", LOW"
		}
		parts = append(parts, s)
	}
	if b.Paused != "" {
		parts = append(parts, "sending paused: "+printable(b.Paused, false))
	}
	if b.Error != "" {
		parts = append(parts, "last check failed: "+printable(b.Error, false))
	}
	return strings.Join(parts, "; ")
}

// simUSSD changes the simulated network's USSD side (outpost sim
// --control): the balance *100# answers, the delay of its answers, and
// whether the modem wants packed GSM 7-bit hex (a Huawei).
func simUSSD(m *sim.Modem, verb, arg string) error {
	if verb == "ussd-packed" {
		if arg != "on" && arg != "off" {
			return fmt.Errorf("ussd-packed %q: want on or off", arg)
		}
		f := m.Faults()
		f.USSDPacked = arg == "on"
		m.SetFaults(f)
		return nil
	}
	if verb == "balance" {
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return fmt.Errorf("balance %q: want a number", arg)
		}
		m.SetBalance(v)
		return nil
	}
	d, err := time.ParseDuration(arg)
	if err != nil || d < 0 {
		return fmt.Errorf("ussd-delay %q: want a duration (3s)", arg)
	}
	f := m.Faults()
	f.USSDDelay = d
	m.SetFaults(f)
	return nil
}
