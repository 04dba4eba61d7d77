package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-sms/outpost/bridge"
)

// cmdMessages lists messages with filters, a page at a time.
func cmdMessages(args []string) int {
	fs := flag.NewFlagSet("messages", flag.ContinueOnError)
	in := fs.Bool("in", false, "inbound messages only")
	out := fs.Bool("out", false, "outbound messages only")
	state := fs.String("state", "", "a state: of an inbound message (complete, incomplete, undecodable, read, unread, handled, unhandled) or of any destination (queued, sending, sent, delivered, failed, expired, cancelled, scheduled)")
	number := fs.String("number", "", "messages from or to this number")
	tag := fs.String("tag", "", "messages with this tag")
	since := fs.String("since", "", "messages since: days (7d), a duration (36h) or an RFC 3339 time")
	limit := fs.Int("limit", 50, "how many messages (1 to 1000)")
	cursor := fs.String("cursor", "", "the page after an earlier listing (it prints the cursor)")
	asJSON := fs.Bool("json", false, "print JSON: {\"messages\": […], \"next\": CURSOR}")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost messages [--in|--out] [--state S] [--number N] [--tag T] [--since 7d|RFC3339] [--limit N] [--cursor C] [--json]\n\nMessages, newest first, with their state; a page at a time.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	q := url.Values{}
	switch {
	case *in && *out:
		return usageError(fs, "--in and --out exclude each other")
	case *in:
		q.Set("direction", "in")
	case *out:
		q.Set("direction", "out")
	}
	if *limit < 1 || *limit > 1000 {
		return usageError(fs, fmt.Sprintf("--limit %d: from 1 to 1000", *limit))
	}
	if *since != "" {
		if _, err := bridge.ParseSince(*since, time.Now()); err != nil {
			return usageError(fs, "--"+strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": "))
		}
		q.Set("since", *since)
	}
	if err := bridge.CheckMessageFilter(*state, *tag); err != nil {
		return usageError(fs, "--"+strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": "))
	}
	for k, v := range map[string]string{"state": *state, "number": *number, "tag": *tag, "cursor": *cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(*limit))
	var p bridge.MessagePage
	if code := fetch("messages", mk, "/v1/messages?"+q.Encode(), *asJSON, &p); code >= 0 {
		return code
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTIME\tDIR\tPEER\tSTATE\tMARKS\tTEXT")
	for _, v := range p.Messages {
		var marks []string
		if v.Read {
			marks = append(marks, "read")
		}
		if v.Handled {
			marks = append(marks, "handled")
		}
		for _, t := range v.Tags {
			marks = append(marks, "#"+t)
		}
		body := v.DataHex
		if v.Text != nil {
			body = *v.Text
		}
		if len([]rune(body)) > 60 {
			body = string([]rune(body)[:59]) + "…"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.CreatedAt.Local().Format("2006-01-02 15:04:05"), v.Direction,
			printable(v.Peer, false), v.State, printable(strings.Join(marks, " "), false), printable(strings.ReplaceAll(body, "\n", " "), false))
	}
	w.Flush()
	if p.Next != "" {
		fmt.Printf("\nmore: --cursor %s\n", p.Next)
	}
	return 0
}

// cmdMark marks an inbound message read or handled, or tags a message.
func cmdMark(args []string) int {
	fs := flag.NewFlagSet("mark", flag.ContinueOnError)
	read := fs.Bool("read", false, "mark an inbound message read")
	handled := fs.Bool("handled", false, "mark an inbound message handled")
	tag := fs.String("tag", "", "add a tag (one word)")
	by := fs.String("by", "", "who marks it, for the message's history (default: outpost mark and the user name)")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost mark ID [--read] [--handled] [--tag T] [--by WHO]\n\nMarks an inbound message read and/or handled, or tags a message (outpost messages --state unhandled, --tag T).")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	if !*read && !*handled && *tag == "" {
		return usageError(fs, "give --read, --handled or --tag")
	}
	who := *by
	if who == "" {
		who = "outpost mark (user " + userName() + ")"
	}
	c, err := mk()
	if err != nil {
		return fail("mark", err)
	}
	var v bridge.MessageView
	body := map[string]any{"read": *read, "handled": *handled, "tag": *tag, "by": who}
	if err := c.do(http.MethodPost, "/v1/messages/"+url.PathEscape(pos[0])+"/mark", body, &v); err != nil {
		return fail("mark", err)
	}
	marks := []string{}
	if v.Read {
		marks = append(marks, "read")
	}
	if v.Handled {
		marks = append(marks, "handled")
	}
	if len(v.Tags) > 0 {
		marks = append(marks, "tags "+printable(strings.Join(v.Tags, ", "), false))
	}
	fmt.Printf("%s: %s\n", v.ID, strings.Join(marks, "; "))
	return 0
}

// cmdRm deletes a message with its deliveries, parts and history.
func cmdRm(args []string) int {
	fs := flag.NewFlagSet("rm", flag.ContinueOnError)
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost rm ID\n\nDeletes a message with its destinations, parts and history. Refused (exit 1)\nwhile one of its destinations is being sent.")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	c, err := mk()
	if err != nil {
		return fail("rm", err)
	}
	var out struct{}
	if err := c.do(http.MethodDelete, "/v1/messages/"+url.PathEscape(pos[0]), nil, &out); err != nil {
		return fail("rm", err)
	}
	fmt.Printf("%s: deleted\n", printable(pos[0], false))
	return 0
}
