package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// The replies of the contact and group operations are Outpost's alone:
// a client may not publish there (auth.go's ownTopics).
func init() {
	for _, op := range bridge.ContactOps {
		ownTopics = append(ownTopics, "admin/"+op+"/reply")
	}
}

// contactsHook serves the contact and group operations (bridge.ContactOps)
// on admin/<op>: JSON in, the reply on admin/<op>/reply. A change is
// committed before the PUBACK; a request that could not be committed gets
// no PUBACK (the client is disconnected and sends it again). Only clients
// the ACL lets publish on the topic reach it (mochi checks before the
// hook). Other admin/… topics pass on.
type contactsHook struct {
	mochi.HookBase
	c *Connector
}

func (h *contactsHook) ID() string { return "outpost-contacts" }

func (h *contactsHook) Provides(b byte) bool { return b == mochi.OnPublish }

// AdminReply is what admin/<op>/reply carries for the contact and group
// operations.
type AdminReply struct {
	OK       bool     `json:"ok"`
	Result   any      `json:"result,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func (h *contactsHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.c
	op, ok := strings.CutPrefix(pk.TopicName, c.Topic("admin/"))
	if !ok || cl.Net.Inline || !slices.Contains(bridge.ContactOps, op) {
		return pk, nil
	}
	complete := c.inOrder(cl)
	payload := append([]byte(nil), pk.Payload...)
	go func() {
		var r AdminReply
		var err error
		if len(payload) > MaxSendRequest {
			err = bridge.ErrInvalid
			r.Error = "the request is too large"
		} else {
			r.Result, r.Warnings, err = c.router.ContactOp(bridge.WithCaller(context.Background(), "mqtt", clientWho(cl)), op, payload)
		}
		switch {
		case err == nil:
			r.OK = true
		case errors.Is(err, bridge.ErrInvalid), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExists):
			if r.Error == "" {
				r.Error = err.Error()
			}
			r.Result = nil
			c.log.Info("refused admin/"+op, "client", cl.ID, "err", err)
		default:
			c.log.Error("admin/"+op+" not stored; not acknowledged", "client", cl.ID, "err", err)
			complete(func() { cl.Stop(err) })
			return
		}
		complete(func() {
			c.ack(cl, pk)
			b, _ := json.Marshal(r)
			if err := c.server.Publish(c.Topic("admin/"+op+"/reply"), b, false, 1); err != nil {
				c.log.Warn("publish reply", "err", err)
			}
		})
	}()
	return answeredByPipe(pk), nil
}
