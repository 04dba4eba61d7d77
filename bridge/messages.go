package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/outpost-sms/outpost/store"
)

// MessagePage is one page of a message listing: Next is the cursor of
// the page after it ("" for the last one).
type MessagePage struct {
	Messages []MessageView `json:"messages"`
	Next     string        `json:"next,omitempty"`
}

// MessageStates are the states a message list can filter on: an inbound
// message's state or mark, or the state of any of its destinations.
var MessageStates = []string{"complete", "incomplete", "undecodable", "read", "unread", "handled", "unhandled",
	"queued", "scheduled", "sending", "sent", "delivered", "failed", "expired", "cancelled"}

// CheckMessageFilter checks a message list's state and tag: an unknown
// state, or a tag that cannot be one (a space, a comma, over 64 bytes),
// is ErrInvalid naming what is valid (they found nothing, silently).
func CheckMessageFilter(state, tag string) error {
	if state != "" && !slices.Contains(MessageStates, state) {
		return fmt.Errorf("%w: state %q is not a state: give one of %s", ErrInvalid, state, strings.Join(MessageStates, ", "))
	}
	if tag != "" && (strings.ContainsAny(tag, ", \t\r\n") || len(tag) > 64) {
		return fmt.Errorf("%w: tag %q: a tag is one word of at most 64 bytes, without a comma or a space", ErrInvalid, tag)
	}
	return nil
}

// SearchNumber reads a number to search for as sends read it:
// "tel:+254712345678", "+254 712 345 678" and "00254712345678" are
// "+254712345678"; what is not a number in international form is
// searched as it is, without a tel: (a short code, a local number).
func SearchNumber(n string) string {
	if p, err := NormalisePhone(n); err == nil {
		return p
	}
	if a, err := ParseAddress(strings.TrimSpace(n)); err == nil && a.Scheme == SchemeTel {
		return a.Value
	}
	return strings.TrimSpace(n)
}

// ListMessages lists messages newest first (store.Filter), each with its
// summary state and its destinations (no history). A bad filter or cursor
// is ErrInvalid.
func (h *Router) ListMessages(ctx context.Context, f store.Filter) (MessagePage, error) {
	switch f.Direction {
	case "", store.In, store.Out:
	default:
		return MessagePage{}, fmt.Errorf("%w: direction %q: in or out", ErrInvalid, f.Direction)
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return MessagePage{}, fmt.Errorf("%w: limit %d: from 1 to 1000", ErrInvalid, f.Limit)
	}
	if err := CheckMessageFilter(f.State, f.Tag); err != nil {
		return MessagePage{}, err
	}
	f.Number = SearchNumber(f.Number)
	p := MessagePage{Messages: []MessageView{}}
	err := h.Store.View(ctx, func(tx *store.Tx) error {
		ms, next, err := tx.ListMessages(f)
		if err != nil {
			return err
		}
		p.Next = next
		for _, m := range ms {
			v := newView(m)
			if v.Deliveries, err = tx.Deliveries(m.ID); err != nil {
				return err
			}
			v.State = summarize(v.Message, v.Deliveries)
			p.Messages = append(p.Messages, v)
		}
		return nil
	})
	if errors.Is(err, store.ErrInvalid) {
		err = fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return p, err
}

// MarkMessage marks an inbound message read and/or handled, or tags a
// message (store.Tx.MarkMessage), committed before it answers. ErrInvalid
// for a mark that does not apply; store.ErrNotFound for an unknown id.
func (h *Router) MarkMessage(ctx context.Context, id string, mk store.Mark, by string) (MessageView, error) {
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		before, err := tx.Message(id)
		if err != nil {
			return err
		}
		after, err := tx.MarkMessage(id, mk, by)
		if err != nil {
			return err
		}
		// Only what changed is audited (marking a read message read, or
		// a tag it has, is no change).
		var what []string
		if after.Read && !before.Read {
			what = append(what, "read")
		}
		if after.Handled && !before.Handled {
			what = append(what, "handled")
		}
		if mk.Tag != "" && !slices.Contains(before.Tags, mk.Tag) {
			what = append(what, "tag "+mk.Tag)
		}
		if len(what) == 0 {
			return nil
		}
		who := by
		if who == "" {
			who = callerOf(ctx, "api")
		}
		return h.audit(tx, store.AuditEntry{Who: who, Channel: origin(ctx, "api"), Op: "mark", Target: id, Detail: strings.Join(what, ", ")})
	})
	if errors.Is(err, store.ErrInvalid) {
		return MessageView{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return MessageView{}, err
	}
	return h.Message(ctx, id)
}

// DeleteMessage deletes a message with its deliveries, parts and history.
// store.ErrWrongState while one of its deliveries is being sent;
// store.ErrNotFound for an unknown id.
func (h *Router) DeleteMessage(ctx context.Context, id string) error {
	return h.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteMessage(id); err != nil {
			return err
		}
		return h.auditCtx(ctx, tx, "rm", id, "deleted with its destinations, parts and history")
	})
}
