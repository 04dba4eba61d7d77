package bridge

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SendJSON is the JSON form of a send request, the same on every API:
// MQTT sms/send, HTTP POST /v1/messages (and the hub downlink).
type SendJSON struct {
	ID      string          `json:"id,omitempty"`
	To      json.RawMessage `json:"to"`
	Text    string          `json:"text,omitempty"`
	DataHex string          `json:"data_hex,omitempty"`
	Report  *bool           `json:"report,omitempty"`
	Flash   bool            `json:"flash,omitempty"`
	ReplyTo string          `json:"reply_to,omitempty"`
	// InReplyTo is the id of the inbound message this answers: the one
	// way to reach a number that opted out (its own message's id).
	InReplyTo string `json:"in_reply_to,omitempty"`
	// Port addresses "data_hex" to an application port (16-bit).
	Port *int `json:"port,omitempty"`
	// Validity is how long the SMSC keeps trying ("12h"; 5m to 441 days).
	Validity string `json:"validity,omitempty"`
	// Priority: a number from -1 to 9, higher goes first, or a name
	// (low -1, normal 0: the default, high 5, urgent 9; priority.go).
	Priority *Priority `json:"priority,omitempty"`
	// NotBefore and Expires are times (RFC 3339) or durations from now
	// ("30m"): the message is held until NotBefore and dropped, if not
	// yet sent, at Expires.
	NotBefore string `json:"not_before,omitempty"`
	Expires   string `json:"expires,omitempty"`
	// Channels are the channels a group of contacts is reached on
	// ("sms", "email", "xmpp"; default sms).
	Channels []string `json:"channels,omitempty"`
	// Modem is the id of the modem the SMS must go out through.
	Modem string `json:"modem,omitempty"`
}

// SendReply is the answer to a send request, the same on every API: the
// MQTT sms/send/reply (also to the hub), HTTP POST /v1/messages' 201 and
// errors' "error", and what the CLI reads.
type SendReply struct {
	ID    string `json:"id,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Notes say what the send came to beyond its id (a group that lists a
	// number more than once).
	Notes []string `json:"notes,omitempty"`
	// RetryAfter is, for a send refused over a quota, the seconds until it
	// would fit (quota.go).
	RetryAfter int `json:"retry_after,omitempty"`
}

// MaxPriority is the highest "priority" of a send request.
const MaxPriority = 9

// parseWhen reads a time given as RFC 3339 or as a duration from now.
// It says whether it was a duration.
func parseWhen(field, s string, now time.Time) (time.Time, bool, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, false, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(d), true, nil
	}
	return time.Time{}, false, fmt.Errorf(`%q %q: give a time such as "2026-11-23T18:00:00Z" (RFC 3339) or a duration from now such as "30m"`, field, s)
}

// ParseSend turns a JSON send request from source into a SendRequest,
// with an error that names the problem. The SendJSON is returned even on
// error, so that a reply can carry the request's id.
func ParseSend(b []byte, source string) (SendRequest, SendJSON, error) {
	// DataHex is read as a pointer to tell "data_hex": "" (an error)
	// from no "data_hex" at all; the outer field hides SendJSON's.
	var w struct {
		SendJSON
		DataHex *string `json:"data_hex,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&w)
	p := w.SendJSON
	if w.DataHex != nil {
		p.DataHex = *w.DataHex
	}
	var bad priorityError
	if errors.As(err, &bad) {
		return SendRequest{}, p, bad
	}
	if err != nil {
		return SendRequest{}, p, fmt.Errorf("bad JSON: %v", err)
	}
	// One object and nothing else: "{…}garbage" or two objects are not
	// a request (only JSON white space may follow).
	if at := int(dec.InputOffset()); len(bytes.TrimLeft(b[at:], " \t\r\n")) > 0 {
		at += len(b[at:]) - len(bytes.TrimLeft(b[at:], " \t\r\n"))
		rest := b[at:]
		if len(rest) > 20 {
			rest = append(rest[:20:20], "…"...)
		}
		return SendRequest{}, p, fmt.Errorf("bad JSON: something after the request at byte %d: %q: send one JSON object", at, rest)
	}
	req := SendRequest{ID: p.ID, Text: p.Text, Report: p.Report == nil || *p.Report, Flash: p.Flash, Source: source, Channels: p.Channels, Modem: p.Modem}
	if p.InReplyTo != "" {
		if err := CheckID(p.InReplyTo); err != nil {
			return req, p, fmt.Errorf(`"in_reply_to": %v`, strings.TrimPrefix(err.Error(), `"id" `))
		}
		req.InReplyTo = p.InReplyTo
	}
	// A port out of range is said first, whatever else is wrong.
	if p.Port != nil && (*p.Port < 1 || *p.Port > 65535) {
		return req, p, fmt.Errorf(`"port" %d: must be 1–65535`, *p.Port)
	}
	switch {
	case len(p.To) == 0 || string(p.To) == "null":
		return req, p, errors.New(`"to" is missing`)
	case p.To[0] == '"':
		var s string
		json.Unmarshal(p.To, &s)
		req.To = []string{s}
	case p.To[0] == '[':
		if err := json.Unmarshal(p.To, &req.To); err != nil {
			return req, p, errors.New(`"to" must be a phone number or a list of phone numbers`)
		}
	default:
		return req, p, errors.New(`"to" must be a phone number (a string) or a list of them`)
	}
	if w.DataHex != nil {
		if p.DataHex == "" {
			return req, p, errors.New(`"data_hex" is empty: give the data as hex digits, or "text"`)
		}
		if p.Text != "" {
			return req, p, errors.New(`give "text" or "data_hex", not both`)
		}
		d, err := hex.DecodeString(p.DataHex)
		if err != nil {
			return req, p, fmt.Errorf(`"data_hex" is not hex: %v`, err)
		}
		req.Data = d
	}
	if p.Port != nil {
		if req.Data == nil {
			return req, p, errors.New(`"port" goes with "data_hex", not "text"`)
		}
		req.Port = *p.Port
	}
	if p.Validity != "" {
		v, err := time.ParseDuration(p.Validity)
		if err != nil {
			return req, p, fmt.Errorf(`"validity" %q: not a duration like "12h"`, p.Validity)
		}
		req.Validity = v
	}
	if p.Priority != nil {
		req.Priority = int(*p.Priority) // checked as it was read (Priority)
	}
	now := time.Now()
	if p.NotBefore != "" {
		if req.NotBefore, req.notBeforeRel, err = parseWhen("not_before", p.NotBefore, now); err != nil {
			return req, p, err
		}
	}
	if p.Expires != "" {
		if req.Expires, req.expiresRel, err = parseWhen("expires", p.Expires, now); err != nil {
			return req, p, err
		}
	}
	return req, p, nil
}
