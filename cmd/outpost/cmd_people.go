package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/outpost-sms/outpost/bridge"
)

const peopleUsage = `usage:
  outpost optout list                    the numbers that opted out (STOP), oldest first
  outpost optout add NUMBER              record an opt-out (one asked by other means)
  outpost optout remove NUMBER           take it back (the number is sent to again)
  outpost topic list [TOPIC]             the subscribers of a topic (of every topic)
  outpost topic subscribe TOPIC ADDR     subscribe a phone number or mailto: address (confirmed to it)
  outpost topic unsubscribe TOPIC ADDR   take it off (confirmed to it)
  outpost topic log [ADDR]               every opt-out, opt-in, join and leave recorded
flags: --json (print the daemon's JSON answer), --config FILE, --data-dir DIR, --timeout D`

// cmdPeople is outpost optout … and outpost topic …: the people
// operations (bridge.PeopleOps) through the daemon's HTTP API.
func cmdPeople(cmd string, args []string) int {
	name := cmd
	if len(args) > 0 {
		name += " " + args[0]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), peopleUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, peopleUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	sub := args[0]
	var op string
	var min, max int
	switch cmd + " " + sub {
	case "optout list":
		op = "optout-list"
	case "optout add", "optout remove":
		op, min, max = "optout-"+sub, 1, 1
	case "topic list":
		op, max = "topic-list", 1
	case "topic subscribe", "topic unsubscribe":
		op, min, max = "topic-"+sub, 2, 2
	case "topic log":
		op, max = "people-log", 1
	default:
		fmt.Fprintf(os.Stderr, "outpost %s: unknown command %q\n%s\n", cmd, sub, peopleUsage)
		return exitUsage
	}
	pos, code := parseArgs(fs, args[1:], min, max)
	if code >= 0 {
		return code
	}
	var req bridge.PeopleRequest
	switch op {
	case "optout-add", "optout-remove":
		req.Addr = pos[0]
	case "topic-list":
		if len(pos) > 0 {
			req.Topic = pos[0]
		}
	case "topic-subscribe", "topic-unsubscribe":
		req.Topic, req.Addr = pos[0], pos[1]
	case "people-log":
		if len(pos) > 0 {
			req.Addr = pos[0]
		}
	}
	c, err := mk()
	if err != nil {
		return fail(name, err)
	}
	var raw json.RawMessage
	if err := c.do("POST", "/v1/people/"+op, req, &raw); err != nil {
		return fail(name, err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	var ans bridge.PeopleAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fail(name, err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	at := func(t time.Time) string { return t.Local().Format(time.DateTime) }
	switch op {
	case "optout-list":
		if len(ans.OptOuts) == 0 {
			fmt.Fprintln(w, "no number opted out")
			return 0
		}
		fmt.Fprintln(w, "ADDRESS\tSINCE\tBY\tMESSAGE")
		for _, o := range ans.OptOuts {
			by := o.Word
			if by == "" {
				by = o.Channel
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", o.Addr, at(o.At), printable(by, false), o.MessageID)
		}
	case "topic-list":
		if len(ans.Subscriptions) == 0 {
			fmt.Fprintln(w, "no subscriber")
			return 0
		}
		fmt.Fprintln(w, "TOPIC\tADDRESS\tSINCE\tVIA\tMESSAGE")
		for _, s := range ans.Subscriptions {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Topic, s.Addr, at(s.At), s.Channel, s.MessageID)
		}
	case "people-log":
		fmt.Fprintln(w, "TIME\tADDRESS\tCHANGE\tTOPIC\tVIA\tMESSAGE")
		for _, l := range ans.Log {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", at(l.At), l.Addr, l.Action, l.Topic, l.Channel, l.MessageID)
		}
	default:
		if !ans.Changed {
			fmt.Fprintln(w, "nothing changed: it was already so")
			return 0
		}
		fmt.Fprintln(w, "done")
		if ans.Confirmation != "" {
			fmt.Fprintln(w, "confirmation sent:", ans.Confirmation)
		}
		if ans.NoConfirmation != "" {
			fmt.Fprintln(w, "no confirmation:", ans.NoConfirmation)
		}
	}
	return 0
}
