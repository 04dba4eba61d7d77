package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/config"
)

// quotaPolicy is the router's sending policy from the config's [quota]
// (checked by config.Validate).
func quotaPolicy(q config.Quota) (bridge.Quota, error) {
	out := bridge.Quota{SMSPerHour: q.SMSPerHour, SMSPerDay: q.SMSPerDay, PerNumberPerHour: q.PerNumberPerHour}
	for _, s := range q.Sources {
		sq := bridge.SourceQuota{Who: s.Who, SMSPerHour: q.SMSPerHour, SMSPerDay: q.SMSPerDay}
		if s.SMSPerHour != nil {
			sq.SMSPerHour = *s.SMSPerHour
		}
		if s.SMSPerDay != nil {
			sq.SMSPerDay = *s.SMSPerDay
		}
		out.Sources = append(out.Sources, sq)
	}
	if q.QuietHours == "" {
		return out, nil
	}
	start, end, err := config.ParseQuietHours(q.QuietHours)
	if err != nil {
		return out, fmt.Errorf("quota.quiet_hours: %w", err)
	}
	loc := time.Local
	if q.Timezone != "" {
		if loc, err = time.LoadLocation(q.Timezone); err != nil {
			return out, fmt.Errorf("quota.timezone: %w", err)
		}
	}
	p, err := bridge.ParsePriority(string(q.QuietPriority))
	if err != nil {
		return out, fmt.Errorf("quota.quiet_priority: %w", err)
	}
	out.Quiet = &bridge.QuietHours{Start: start, End: end, Loc: loc, Priority: p}
	return out, nil
}

const quotaUsage = `usage: outpost quota [--who WHO] [--number N] [--json]

A source's SMS accepted in the last hour and day with its bounds ([quota],
[[quota.source]]), a number's SMS in the last hour, and the quiet hours.
WHO is a source as the audit log names it (mqtt:CLIENT, mailto:ADDR, user
NAME…); default: who asks (--by, or user NAME).`

// cmdQuota is outpost quota: bridge.QuotaOp through the daemon's HTTP API
// (GET /v1/quota).
func cmdQuota(args []string) int {
	fs := flag.NewFlagSet("quota", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	who := fs.String("who", "", "the source (default: who asks)")
	number := fs.String("number", "", "a phone number: its SMS in the last hour")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), quotaUsage)
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	q := url.Values{}
	if *who != "" {
		q.Set("who", *who)
	}
	if *number != "" {
		q.Set("number", *number)
	}
	c, err := mk()
	if err != nil {
		return fail("quota", err)
	}
	var raw json.RawMessage
	if err := c.do("GET", "/v1/quota?"+q.Encode(), nil, &raw); err != nil {
		return fail("quota", err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	var a bridge.QuotaAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fail("quota", err)
	}
	bound := func(n int) string {
		if n == 0 {
			return "no bound"
		}
		return strconv.Itoa(n)
	}
	fmt.Printf("source:      %s (%s)\n", printable(a.Who, false), a.Rule)
	fmt.Printf("last hour:   %d SMS (sms_per_hour: %s)\n", a.SMSLastHour, bound(a.SMSPerHour))
	fmt.Printf("last 24h:    %d SMS (sms_per_day: %s)\n", a.SMSLastDay, bound(a.SMSPerDay))
	if a.NumberLastHour != nil {
		fmt.Printf("number:      %s: %d SMS in the last hour (per_number_per_hour: %s)\n", a.Number, *a.NumberLastHour, bound(a.PerNumberPerHour))
	}
	switch {
	case a.QuietHours == "":
		fmt.Println("quiet hours: none")
	case !a.QuietUntil.IsZero():
		fmt.Printf("quiet hours: %s; now, until %s\n", a.QuietHours, a.QuietUntil.Local().Format(time.DateTime))
	default:
		fmt.Printf("quiet hours: %s; not now\n", a.QuietHours)
	}
	return 0
}
