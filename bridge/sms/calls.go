package sms

import (
	"context"
	"errors"
	"fmt"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
)

// storeCall stores a missed call as an inbound message that routes like
// an SMS: kind "call", so a program tells it from a text, and the text
// "missed call from <number>", so a person (or a connector that only
// carries text: SMS, email, XMPP) reads it as it is. Its key is the
// call's: a call handed up again is recognised.
func (c *Connector) storeCall(ctx context.Context, in hw.Inbound) (string, error) {
	call := in.Call
	peer, text := call.Number, "missed call from "+call.Number
	if p, err := bridge.CanonicalPhone(peer); err == nil {
		peer, text = p, "missed call from "+p
	}
	if peer == "" {
		peer, text = "withheld", "missed call from a withheld number"
	}
	how := "the caller gave up"
	if call.HungUp {
		how = "hung up by Outpost"
	}
	detail := fmt.Sprintf("call via %s, %d ring(s), %s", in.Modem, call.Rings, how)
	msg := &store.Message{
		Peer: peer, Modem: in.Modem, Text: &text, Source: "sms", Channel: "sms", Kind: store.KindCall,
		State: store.Complete, Detail: detail, FromAddr: fromAddr(peer), DedupKey: in.Modem + "|call|" + call.ID,
	}
	err := c.inbound(ctx, func(tx *store.Tx) error { return c.router.StoreInbound(tx, msg, detail) })
	switch {
	case errors.Is(err, store.ErrDuplicate):
		c.Log.Info("call handed up again; already stored", "modem", in.Modem, "msg_id", msg.ID)
		err = nil
	case err == nil:
		c.Log.Info("missed call stored", "modem", in.Modem, "msg_id", msg.ID, "from", peer, "rings", call.Rings)
	}
	return msg.DedupKey, err
}
