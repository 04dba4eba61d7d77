package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-sms/outpost/bridge"
)

const bansUsage = `usage:
  outpost ban NUMBER [--reason R] [--by WHO]   ban a number (or mailto: address): its messages are stored,
                                               not routed or answered; nothing is sent to it
  outpost ban list                             the bans, oldest first, with who banned and when
  outpost unban NUMBER [--by WHO]              lift a ban
  outpost audit [--since 1h|RFC3339] [--who W] every state-changing action: when, who, channel, what
flags: --json (print the daemon's JSON answer), --config FILE, --data-dir DIR, --timeout D`

// cliByFlag is the --by of a command that has none of its own.
var cliByFlag string

// cliBy is who the outpost command says asks, for the audit log: its
// --by, else the user.
func cliBy() string {
	if cliByFlag != "" {
		return cliByFlag
	}
	return "user " + userName()
}

// cmdBans is outpost ban …, unban … and audit: bridge.BanOps through the
// daemon's HTTP API (/v1/bans, /v1/audit).
func cmdBans(cmd string, args []string) int {
	op := cmd
	name := cmd
	if cmd == "ban" && len(args) > 0 && args[0] == "list" {
		op, name, args = "ban-list", "ban list", args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	reason := fs.String("reason", "", "why (ban)")
	by := fs.String("by", "", "who asks, for the audit log (default: user and the user name)")
	since := fs.String("since", "", "audit: entries since then: a duration back from now (1h) or a time (RFC 3339)")
	whoF := fs.String("who", "", "audit: entries whose who contains this (any case)")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), bansUsage)
		fs.PrintDefaults()
	}
	min, max := 1, 1
	if op == "ban-list" || op == "audit" {
		min, max = 0, 0
	}
	pos, code := parseArgs(fs, args, min, max)
	if code >= 0 {
		return code
	}
	req := bridge.BanRequest{Reason: *reason, By: *by}
	if req.By == "" {
		req.By = cliBy()
	}
	var method, path string
	var body any = req
	switch op {
	case "ban":
		req.Addr = pos[0]
		method, path, body = "POST", "/v1/bans", req
	case "unban":
		method, path = "DELETE", "/v1/bans/"+url.PathEscape(pos[0])
	case "ban-list":
		method, path, body = "GET", "/v1/bans", nil
	case "audit":
		if _, err := bridge.ParseSince(*since, time.Now()); err != nil {
			return usageError(fs, "--"+strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": "))
		}
		q := url.Values{}
		if *since != "" {
			q.Set("since", *since)
		}
		if *whoF != "" {
			q.Set("who", *whoF)
		}
		method, path, body = "GET", "/v1/audit?"+q.Encode(), nil
	}
	c, err := mk()
	if err != nil {
		return fail(name, err)
	}
	var raw json.RawMessage
	if err := c.do(method, path, body, &raw); err != nil {
		return fail(name, err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	var ans bridge.BanAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fail(name, err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	at := func(t time.Time) string { return t.Local().Format(time.DateTime) }
	switch op {
	case "ban-list":
		if len(ans.Bans) == 0 {
			fmt.Fprintln(w, "no ban")
			return 0
		}
		fmt.Fprintln(w, "ADDRESS\tSINCE\tBY\tVIA\tREASON")
		for _, b := range ans.Bans {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.Addr, at(b.At), printable(b.By, false), b.Channel, printable(b.Reason, false))
		}
	case "audit":
		fmt.Fprintln(w, "TIME\tWHO\tVIA\tOPERATION\tTARGET\tDETAIL")
		for _, e := range ans.Audit {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", at(e.At), printable(e.Who, false), e.Channel, e.Op, printable(e.Target, false), printable(e.Detail, false))
		}
	default:
		if !ans.Changed {
			fmt.Fprintln(w, "nothing changed: it was already so")
			return 0
		}
		fmt.Fprintln(w, "done")
	}
	return 0
}
