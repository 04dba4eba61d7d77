package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/outpost-sms/outpost/bridge"
)

const statsUsage = `usage: outpost stats [NUMBER] [--since 7d|36h|RFC3339] [--modem M] [--json]

Statistics over a window (default the last 7 days, by the daemon's clock):
  NUMBER    a phone number as a send takes it (+15555550100, tel:+…), or an address (mailto:…,
            mqtt:CLIENT): its messages in (what it sent) and out (what was sent to it) per day,
            when it was last seen, the success rate of what was sent to it (sent or delivered
            against failed or expired) and the average time from accepted to sent and to delivered
  modems    parts and messages each modem sent and received, parts failed, success rate
            (--modem M: that modem alone; an unknown one exits 1)
  channels  sms, email, mqtt, hub, webhook, http, cli…: messages in on it, deliveries out through
            it, how they ended`

// cmdStats is outpost stats: bridge.StatsOps through the daemon's HTTP
// API (GET /v1/stats).
func cmdStats(args []string) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	since := fs.String("since", "7d", "the window's start: days (7d), a duration back from now (36h) or an RFC 3339 time")
	modem := fs.String("modem", "", "one modem's statistics (its id)")
	asJSON := fs.Bool("json", false, "print the daemon's JSON answer")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), statsUsage)
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 0, 1)
	if code >= 0 {
		return code
	}
	if _, err := bridge.ParseStatsSince(*since, time.Now()); err != nil {
		return usageError(fs, "--"+trimInvalid(err))
	}
	q := url.Values{}
	q.Set("since", *since)
	if len(pos) == 1 {
		q.Set("number", pos[0])
	}
	if *modem != "" {
		q.Set("modem", *modem)
	}
	var st bridge.Stats
	if code := fetch("stats", mk, "/v1/stats?"+q.Encode(), *asJSON, &st); code >= 0 {
		return code
	}
	at := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }
	pct := func(r *float64) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", *r*100)
	}
	fmt.Printf("from %s to %s\n", at(st.Since), at(st.Until))
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if s := st.Sender; s != nil {
		fmt.Fprintf(w, "\n%s\n", printable(s.Addr, false))
		last := "never"
		if !s.LastSeen.IsZero() {
			last = s.LastSeen.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "  in %d, out %d; last seen %s\n", s.In, s.Out, last)
		fmt.Fprintf(w, "  success rate %s: %d sent or delivered, %d failed or expired, %d not finished", pct(s.SuccessRate), s.Succeeded, s.Failed, s.Pending)
		if s.Cancelled > 0 {
			fmt.Fprintf(w, ", %d cancelled", s.Cancelled)
		}
		fmt.Fprintln(w)
		avg := func(v *int64, n int, what string) {
			if v == nil {
				fmt.Fprintf(w, "  average time to %s: -\n", what)
				return
			}
			fmt.Fprintf(w, "  average time to %s: %s (over %d)\n", what, (time.Duration(*v) * time.Millisecond).String(), n)
		}
		avg(s.ToSentMS, s.SentTimed, "sent (accepted → handed to the modem)")
		avg(s.ToDeliveredMS, s.DeliveredTimed, "delivered (accepted → the network's status report)")
		if len(s.Days) > 0 {
			fmt.Fprintln(w, "\nDAY\tIN\tOUT")
			for _, d := range s.Days {
				fmt.Fprintf(w, "%s\t%d\t%d\n", d.Day, d.In, d.Out)
			}
		}
	}
	fmt.Fprintln(w, "\nMODEM\tSENT\tPARTS SENT\tRECEIVED\tPARTS RECEIVED\tPARTS FAILED\tFAILED\tSUCCESS")
	if len(st.Modems) == 0 {
		fmt.Fprintln(w, "(none sent or received anything)")
	}
	for _, m := range st.Modems {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", printable(m.Modem, false), m.MessagesSent, m.PartsSent, m.MessagesReceived, m.PartsReceived,
			m.PartsFailed, m.Failed, pct(m.SuccessRate))
	}
	fmt.Fprintln(w, "\nCHANNEL\tIN\tOUT\tOK\tFAILED\tPENDING\tSUCCESS")
	for _, c := range st.Channels {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", printable(c.Channel, false), c.In, c.Out, c.Succeeded, c.Failed, c.Pending, pct(c.SuccessRate))
	}
	w.Flush()
	return 0
}

// trimInvalid is err's text without bridge.ErrInvalid's prefix.
func trimInvalid(err error) string {
	s := err.Error()
	if p := bridge.ErrInvalid.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
