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

// The people operations' answers are Outpost's own output: no client
// may publish on admin/<op>/reply.
func init() {
	for _, op := range bridge.PeopleOps {
		ownTopics = append(ownTopics, "admin/"+op+"/reply")
	}
}

// peopleHook serves the people operations (bridge.PeopleOps) published
// on admin/<op>: JSON in, the answer on admin/<op>/reply. A change is
// committed before the PUBACK; one that cannot be committed gets no
// PUBACK (the client is disconnected and asks again). Only clients the
// ACL lets publish on admin/<op> get here (the broker checks it before
// any hook); other admin/ ops are left to the hooks after this one.
type peopleHook struct {
	mochi.HookBase
	c *Connector
}

func (h *peopleHook) ID() string { return "outpost-people" }

func (h *peopleHook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *peopleHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	op, ok := strings.CutPrefix(pk.TopicName, h.c.Topic("admin/"))
	if !ok || cl.Net.Inline || !bridge.IsPeopleOp(op) {
		return pk, nil
	}
	c := h.c
	complete := c.inOrder(cl)
	payload := append([]byte(nil), pk.Payload...)
	go func() {
		ans, err := c.router.People(bridge.WithCaller(context.Background(), "mqtt", clientWho(cl)), op, payload, "mqtt")
		switch {
		case errors.Is(err, bridge.ErrInvalid):
			c.log.Info("rejected admin/"+op, "client", cl.ID, "err", err)
			ans = bridge.PeopleAnswer{Error: strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")}
		case err != nil:
			c.log.Error("admin/"+op+" not stored; not acknowledged", "client", cl.ID, "err", err)
			complete(func() { cl.Stop(err) })
			return
		case ans.Changed:
			c.log.Info("people: "+op, "client", cl.ID, "confirmation", ans.Confirmation)
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
