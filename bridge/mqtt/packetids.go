package mqtt

import (
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// packetIDHook works around a mochi-mqtt v2.7.9 bug. MQTT gives client
// and server packet identifiers of their own ("assigned independently of
// each other", 3.1.1 §2.3.1), but mochi refuses a SUBSCRIBE or an
// UNSUBSCRIBE whose identifier equals one of its own QoS 1/2 messages to
// that client not yet acknowledged, with reason code 0x91 (and to an MQTT
// 3.1.1 client, which has no such code, a "granted QoS" of 145 that paho
// reports as success). A LAN app that subscribes while Outpost's retained
// states or status changes are on their way to it lost its subscription
// without knowing. mochi's check sits between the OnSubscribe and
// OnSubscribed hooks; OnSubscribed gets the reason codes of the SUBACK
// (the same slice, not yet written), so this hook does for every filter
// so refused what mochi would have done, and corrects its code. An
// UNSUBSCRIBE refused so is carried out in OnUnsubscribed (3.1.1's UNSUBACK
// has no reason codes; an MQTT 5 client still reads 0x91 there).
type packetIDHook struct {
	mochi.HookBase
	server *mochi.Server
	acl    func(cl *mochi.Client, topic string, write bool) bool
	// unsub holds, for the client reading an UNSUBSCRIBE mochi is about
	// to refuse, that it must be carried out (OnUnsubscribe and
	// OnUnsubscribed run on that client's goroutine, one packet at a
	// time).
	mu    sync.Mutex
	unsub map[*mochi.Client]bool
}

func newPacketIDHook(s *mochi.Server, acl func(*mochi.Client, string, bool) bool) *packetIDHook {
	return &packetIDHook{server: s, acl: acl, unsub: map[*mochi.Client]bool{}}
}

func (h *packetIDHook) ID() string { return "outpost-packet-ids" }

func (h *packetIDHook) Provides(b byte) bool {
	return b == mochi.OnSubscribed || b == mochi.OnUnsubscribe || b == mochi.OnUnsubscribed
}

func (h *packetIDHook) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	for i, sub := range pk.Filters {
		if i >= len(codes) || codes[i] != packets.ErrPacketIdentifierInUse.Code {
			continue
		}
		// What processSubscribe does for a filter it takes.
		switch {
		case !mochi.IsValidFilter(sub.Filter, false):
			codes[i] = packets.ErrTopicFilterInvalid.Code
		case sub.NoLocal && mochi.IsSharedFilter(sub.Filter):
			codes[i] = packets.ErrProtocolViolationInvalidSharedNoLocal.Code
		case !h.acl(cl, sub.Filter, false):
			codes[i] = packets.ErrNotAuthorized.Code
		default:
			if h.server.Topics.Subscribe(cl.ID, sub) {
				atomic.AddInt64(&h.server.Info.Subscriptions, 1)
			}
			cl.State.Subscriptions.Add(sub.Filter, sub)
			codes[i] = min(sub.Qos, h.server.Options.Capabilities.MaximumQos)
		}
		if codes[i] > packets.CodeGrantedQos2.Code && cl.Properties.ProtocolVersion < 5 {
			codes[i] = packets.ErrUnspecifiedError.Code
		}
	}
}

func (h *packetIDHook) OnUnsubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	// mochi has just checked the identifier: the state is the same.
	if _, inUse := cl.State.Inflight.Get(pk.PacketID); inUse {
		h.mu.Lock()
		h.unsub[cl] = true
		h.mu.Unlock()
	}
	return pk
}

func (h *packetIDHook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	h.mu.Lock()
	refused := h.unsub[cl]
	delete(h.unsub, cl)
	h.mu.Unlock()
	if !refused {
		return
	}
	for _, sub := range pk.Filters {
		if h.server.Topics.Unsubscribe(sub.Filter, cl.ID) {
			atomic.AddInt64(&h.server.Info.Subscriptions, -1)
		}
		cl.State.Subscriptions.Delete(sub.Filter)
	}
}
