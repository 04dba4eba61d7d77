package bridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// checkModem says what is wrong with a send request's "modem": it must be
// a configured modem's id.
func (h *Router) checkModem(id string) error {
	if h.ReceiveOnly[id] {
		return fmt.Errorf(`"modem" %q is receive-only (send = false): it sends nothing`, id)
	}
	if id == "" || slices.Contains(h.ModemIDs, id) {
		return nil
	}
	if len(h.ModemIDs) == 0 {
		return fmt.Errorf(`"modem" %q: this gateway has no modem`, id)
	}
	return fmt.Errorf(`"modem" %q is not a configured modem (%s)`, id, strings.Join(h.ModemIDs, ", "))
}

// keepReplyModem records, inside tx, the modem an answer to an inbound
// SMS should go out through: the one it came in on (in_reply_to, a
// route's auto-reply, a conversation by mail or chat), so that the
// person gets the answer from the number they wrote to. A request that
// names its modem needs none.
func (h *Router) keepReplyModem(tx *store.Tx, req SendRequest, id string) error {
	if req.Modem != "" {
		return nil
	}
	modem := req.replyModem
	if modem == "" && req.InReplyTo != "" {
		in, err := tx.Message(req.InReplyTo)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		case in.Direction == store.In:
			modem = in.Modem
		}
	}
	if modem == "" && conversational[req.Source] && len(req.To) == 1 {
		// A person answering by mail or chat: the conversation is with
		// the number's last SMS.
		var err error
		if modem, err = tx.LastInboundModem(req.To[0], tx.Now().Add(-conversationAge)); err != nil {
			return err
		}
	}
	if modem == "" {
		return nil
	}
	return tx.SetReplyModem(id, modem)
}

// conversational are the channels a person answers an SMS on without
// naming it: their SMS goes out through the modem the number's last SMS
// came in on, when it came within conversationAge.
var conversational = map[string]bool{"email": true, "xmpp": true}

const conversationAge = 7 * 24 * time.Hour

// OnRoutingStatus registers f to say how the modems take part in
// sending (the SMS connector: limits, loads, rests), for status.
func (h *Router) OnRoutingStatus(f func() any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routing = f
}

// RoutingStatus is what the function given to OnRoutingStatus says (nil
// without one).
func (h *Router) RoutingStatus() any {
	h.mu.Lock()
	f := h.routing
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	return f()
}
