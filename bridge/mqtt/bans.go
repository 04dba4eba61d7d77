package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/bridge"
)

// The ban operations' answers are Outpost's own output: no client may
// publish on admin/<op>/reply.
func init() {
	for _, op := range bridge.BanOps {
		ownTopics = append(ownTopics, "admin/"+op+"/reply")
	}
}

// clientWho is an MQTT client as the audit log names it: its user and
// client id ("mqtt:alice/dev1"), or its client id alone.
func clientWho(cl *mochi.Client) string {
	if u := string(cl.Properties.Username); u != "" {
		return "mqtt:" + u + "/" + cl.ID
	}
	return "mqtt:" + cl.ID
}

// bansHook serves the ban operations (bridge.BanOps: admin/ban,
// admin/unban, admin/ban-list, admin/audit): JSON in, the answer on
// admin/<op>/reply. A ban or unban is committed, with its audit entry,
// before the PUBACK; one that cannot be committed gets no PUBACK (the
// client is disconnected and asks again). Only clients the ACL lets
// publish on admin/<op> get here.
type bansHook struct {
	mochi.HookBase
	c *Connector
}

func (h *bansHook) ID() string { return "outpost-bans" }

func (h *bansHook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *bansHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	op, ok := strings.CutPrefix(pk.TopicName, h.c.Topic("admin/"))
	if !ok || cl.Net.Inline || !bridge.IsBanOp(op) {
		return pk, nil
	}
	c := h.c
	complete := c.inOrder(cl)
	payload := append([]byte(nil), pk.Payload...)
	who := clientWho(cl)
	go func() {
		ans, err := c.router.Bans(context.Background(), op, payload, "mqtt", who)
		switch {
		case errors.Is(err, bridge.ErrInvalid):
			c.log.Info("rejected admin/"+op, "client", cl.ID, "err", err)
			ans = bridge.BanAnswer{Error: strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")}
		case err != nil:
			c.log.Error("admin/"+op+" not stored; not acknowledged", "client", cl.ID, "err", err)
			complete(func() { cl.Stop(err) })
			return
		}
		complete(func() {
			c.ack(cl, pk)
			b, _ := json.Marshal(ans)
			if err := c.server.Publish(c.Topic("admin/"+op+"/reply"), b, false, 1); err != nil {
				c.log.Warn("publish reply", "err", err)
			}
		})
	}()
	return answeredByPipe(pk), nil
}
