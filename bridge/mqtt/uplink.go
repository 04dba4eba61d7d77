package mqtt

import (
	"encoding/json"
	"errors"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/store"
)

// Forward is a pass-through rule: local publishes on Topic (a filter) go
// to the hub, under Prefix when set.
type Forward struct {
	Topic  string
	QoS    byte
	Prefix string
}

// HubOptions configure what the local broker does for the hub link (the
// hub connector, bridge/hub, owns the link itself).
type HubOptions struct {
	// Link, when set, is the hub link: the pass-through topics are
	// queued for it, and it is woken when they are.
	Link HubLink
	// Forward lists the pass-through topics.
	Forward []Forward
	// Limits bound the hub queue.
	Limits store.HubLimits
}

// HubLink is the hub connector as the local broker needs it.
type HubLink interface {
	// Wake tells the link the hub queue has grown.
	Wake()
}

// forwardHook commits the pass-through topics local devices publish
// before the local broker acknowledges them. (Outpost's own topics are
// queued for the hub by the hub connector, bridge/hub.)
type forwardHook struct {
	mochi.HookBase
	c *Connector
}

func (h *forwardHook) ID() string { return "outpost-forward" }

func (h *forwardHook) Provides(b byte) bool { return b == mochi.OnPublish }

// OnPublish does not wait for the commit: the write goes to the group
// committer and the client's pipe acknowledges it once it is durable, and
// publishes it to local subscribers (see pipeline.go).
func (h *forwardHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.c
	if cl.Net.Inline || pk.Ignore { // Ignore: an sms/send request (answeredByPipe)
		return pk, nil
	}
	f, ok := c.forwardRule(pk.TopicName)
	if !ok {
		return pk, nil
	}
	if err := store.CheckTopic(f.Prefix + pk.TopicName); err != nil {
		// Valid here, not for the hub (the prefix made it too long, say):
		// it is never queued, where the hub would refuse it in front of
		// everything behind it. Local subscribers still get it.
		c.log.Warn("pass-through message not forwarded to the hub", "client", cl.ID, "err", err)
		b, _ := json.Marshal(map[string]string{"topic": pk.TopicName, "client": cl.ID, "reason": err.Error()})
		c.server.Publish(c.Topic("hub/refused"), b, false, 0)
		return pk, nil
	}
	m := store.HubMessage{Topic: f.Prefix + pk.TopicName, Payload: append([]byte(nil), pk.Payload...), QoS: f.QoS, Retain: pk.FixedHeader.Retain}
	pk.Payload = m.Payload
	c.forward(&forwarded{m: m, cl: cl, pk: pk, complete: c.inOrder(cl)})
	return answeredByPipe(pk), nil
}

// enqueued answers what storing a device's message for the hub came to:
// a failed commit stops the client (it sends the message again when it
// reconnects); a refusal tells it why. It returns whether the message was
// stored.
func (c *Connector) enqueued(cl *mochi.Client, pk packets.Packet, accepted bool, dropped int, err error) bool {
	if err != nil {
		c.log.Error("message for the hub not stored; not acknowledged", "topic", pk.TopicName, "client", cl.ID, "err", err)
		cl.Stop(err)
		return false
	}
	c.noteLimits(pk.TopicName, cl.ID, accepted, dropped, false)
	if !accepted {
		b, _ := json.Marshal(map[string]string{"topic": pk.TopicName, "client": cl.ID, "reason": errQueueFull})
		c.server.Publish(c.Topic("hub/refused"), b, false, 0)
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			// PUBACK (PUBREC for QoS 2) with reason code 0x97: quota
			// exceeded, which ends a QoS 2 exchange too.
			typ := packets.Puback
			if pk.FixedHeader.Qos == 2 {
				typ = packets.Pubrec
			}
			cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: pk.PacketID, ReasonCode: packets.ErrQuotaExceeded.Code})
		}
		if cl.Properties.ProtocolVersion < 5 && pk.FixedHeader.Qos > 0 {
			// MQTT 3.1.1 has no refusal, and a client sends a publish
			// again only when it reconnects: without a PUBACK it would
			// wait for it for good, its in-flight window full (one
			// moment of a full queue stopped a mosquitto_pub until it
			// was restarted). Disconnected, it reconnects and sends it
			// again, with what followed.
			cl.Stop(errors.New(errQueueFull))
		}
		return false
	}
	if c.opts.Hub.Link != nil {
		c.opts.Hub.Link.Wake()
	}
	return true
}

const errQueueFull = "the queue to the hub is full (hub.max_messages / hub.max_bytes, when_full = refuse)"

// noteLimits logs what the hub queue's limits did to a message: over is
// one of Outpost's own queued past the bound.
func (c *Connector) noteLimits(topic, client string, accepted bool, dropped int, over bool) {
	// Once per message: logged at most once per 10 s each (with how
	// many were held back), or a device publishing into a full queue
	// writes a line to the SD card for every message.
	if dropped > 0 {
		c.quiet.Warn("hub queue full: oldest messages dropped", "count", dropped, "topic", topic)
	}
	if over {
		c.quiet.Warn("hub queue full: Outpost's own message queued past the bound (only devices' messages are refused)", "topic", topic)
	}
	if !accepted {
		c.quiet.Warn("refused a message for the hub", "topic", topic, "client", client, "reason", errQueueFull)
	}
}

func (c *Connector) forwardRule(topic string) (Forward, bool) {
	for _, f := range c.opts.Hub.Forward {
		if covers(f.Topic, topic) {
			return f, true
		}
	}
	return Forward{}, false
}
