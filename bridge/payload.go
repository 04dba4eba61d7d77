package bridge

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// InboundPayload is what an inbound SMS looks like to the outside: MQTT
// sms/in carries it, a webhook's sms.in event wraps it.
type InboundPayload struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	To      string `json:"to,omitempty"` // the receiving modem's own number, when known
	Text    string `json:"text,omitempty"`
	DataHex string `json:"data_hex,omitempty"`
	// Port is the application port "data_hex" is addressed to (0: none).
	Port       int    `json:"port,omitempty"`
	ReceivedAt string `json:"received_at"`
	SCTS       string `json:"scts,omitempty"`
	SMSC       string `json:"smsc,omitempty"`
	Parts      int    `json:"parts"`
	// Modem and State are left out for a message that no modem received
	// (a send addressed to mqtt or hub).
	Modem  string `json:"modem,omitempty"`
	State  string `json:"state,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Channel is where the message came from (sms, mqtt, http, cli,
	// hub…), Kind what it carries (text, data, form, report).
	Channel string `json:"channel"`
	Kind    string `json:"kind"`
	// Tags are what the matching [[route]]s put on the message.
	Tags []string `json:"tags,omitempty"`
}

// NewInboundPayload is m as InboundPayload; to is the receiving modem's
// own number ("" when unknown).
func NewInboundPayload(m store.Message, to string) InboundPayload {
	p := InboundPayload{ID: m.ID, From: m.Peer, To: to, ReceivedAt: m.CreatedAt.Format(time.RFC3339Nano), SCTS: m.SCTS,
		SMSC: m.SMSC, Parts: m.Parts, Port: m.Port, Modem: m.Modem, State: m.State, Detail: m.Detail, Channel: m.Channel, Kind: m.Kind, Tags: m.Tags}
	if m.Direction == store.Out {
		p.From = m.FromAddr // a send request addressed to mqtt: its sender
	}
	if m.Text != nil {
		p.Text = *m.Text
	} else {
		p.DataHex = strings.ToUpper(hex.EncodeToString(m.Data))
	}
	return p
}

// FormPayload is what a form submission looks like to the outside: MQTT
// xform/<form_id> carries it, a webhook's xform event wraps it.
type FormPayload struct {
	ID         string `json:"id"`
	From       string `json:"from"`
	FormID     string `json:"form_id"`
	InstanceID string `json:"instance_id"`
	XML        string `json:"xml"`
	ReceivedAt string `json:"received_at"`
	Modem      string `json:"modem,omitempty"`
	// Tags are what the matching [[route]]s put on the message.
	Tags []string `json:"tags,omitempty"`
}

// NewFormPayload is m (Message.FormID set) as FormPayload.
func NewFormPayload(m store.Message) FormPayload {
	p := FormPayload{ID: m.ID, From: m.Peer, FormID: m.FormID, InstanceID: m.InstanceID,
		ReceivedAt: m.CreatedAt.Format(time.RFC3339Nano), Modem: m.Modem, Tags: m.Tags}
	if m.Text != nil {
		p.XML = *m.Text
	}
	return p
}

// TopicLevel makes s one MQTT topic level: no separators, no wildcards (a
// form's id in xform/<form_id>).
func TopicLevel(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', 0:
			return '_'
		}
		return r
	}, s)
}
