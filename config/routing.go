package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CanSend is the modem's send key: true unless set to false.
func (m Modem) CanSend() bool { return m.Send == nil || *m.Send }

var rateRe = regexp.MustCompile(`^\s*([0-9]+)\s*/\s*([a-z]+)\s*$`)

// ParseRate reads a rate such as "6/min", "1/s" or "100/h": at most n in
// any period of per. "" is no limit (n 0).
func ParseRate(s string) (n int, per time.Duration, err error) {
	if s == "" {
		return 0, 0, nil
	}
	m := rateRe.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return 0, 0, fmt.Errorf(`want a count per unit such as "6/min", "1/s" or "100/h"`)
	}
	n, err = strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, 0, fmt.Errorf("the count must be at least 1")
	}
	switch m[2] {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return 0, 0, fmt.Errorf("unit %q: use s, min or h", m[2])
	}
	return n, per, nil
}

var prefixRe = regexp.MustCompile(`^\+[0-9]{1,15}$`)

// checkModemRouting checks a [[modem]]'s routing keys (p names the modem).
func checkModemRouting(p string, m Modem, bad func(field string, value any, why string)) {
	seen := map[string]bool{}
	for _, pre := range m.Prefixes {
		switch {
		case !prefixRe.MatchString(pre):
			bad(p+"prefixes", pre, `must be "+" and the first digits of international numbers, such as "+25470"`)
		case seen[pre]:
			bad(p+"prefixes", pre, "is listed twice")
		}
		seen[pre] = true
	}
	if _, _, err := ParseRate(m.Rate); err != nil {
		bad(p+"rate", m.Rate, err.Error())
	}
	if m.DailyLimit < 0 {
		bad(p+"daily_limit", m.DailyLimit, "must be 0 (no limit) or more")
	}
	if m.Jitter.Duration < 0 || m.Jitter.Duration > 10*time.Minute {
		bad(p+"jitter", m.Jitter.String(), "must be between 0 and 10m")
	}
	if !m.CanSend() && (len(m.Prefixes) > 0 || m.Rate != "" || m.DailyLimit > 0) {
		bad(p+"send", false, "a receive-only modem sends nothing: prefixes, rate and daily_limit are for a modem that sends")
	}
}
