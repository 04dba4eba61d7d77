package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/outpost-sms/outpost/store"
)

// MessageOps are the message management operations as one family, for a
// front end that takes them by name with a JSON request (MQTT
// admin/<op>): the same as the CLI's outpost messages, show, mark, rm,
// retry and cancel, and HTTP's /v1/messages routes.
var MessageOps = []string{"messages", "show", "mark", "rm", "retry", "cancel"}

// MessageRequest is the JSON request of a MessageOps operation: the
// filters, limit and cursor of "messages" (as GET /v1/messages, since:
// 7d, 36h or RFC 3339; limit default 50); "id" for the others; "read",
// "handled" and "tag" of "mark" (tag: the tag to add; for "messages",
// the tag to filter on).
type MessageRequest struct {
	ID        string `json:"id"`
	Direction string `json:"direction"`
	State     string `json:"state"`
	Number    string `json:"number"`
	Tag       string `json:"tag"`
	Since     string `json:"since"`
	Limit     int    `json:"limit"`
	Cursor    string `json:"cursor"`
	Read      bool   `json:"read"`
	Handled   bool   `json:"handled"`
}

// MessageOp runs operation op of MessageOps on a JSON request; who asks
// is ctx's caller (WithCaller; a "by" in the request is ClaimedBy's).
// ErrInvalid for a bad request, store.ErrNotFound for an unknown id,
// store.ErrWrongState for a message that cannot be changed so.
func (h *Router) MessageOp(ctx context.Context, op string, body []byte) (any, error) {
	var req MessageRequest
	by, err := DecodeAdminBy(body, &req)
	if err != nil {
		return nil, err
	}
	ctx = WithBy(ctx, by)
	who := callerOf(ctx, "api")
	if op != "messages" && req.ID == "" {
		return nil, invalid(`"id": the message's id is needed`)
	}
	switch op {
	case "messages":
		if req.ID != "" || req.Read || req.Handled {
			return nil, invalid(`"messages" takes direction, state, number, tag, since, limit and cursor`)
		}
		f := store.Filter{Direction: req.Direction, State: req.State, Number: req.Number, Tag: req.Tag, Cursor: req.Cursor, Limit: req.Limit}
		if f.Limit == 0 {
			f.Limit = 50
		}
		if req.Since != "" {
			if f.Since, err = ParseStatsSince(req.Since, h.Store.Now()); err != nil {
				return nil, err
			}
		}
		return h.ListMessages(ctx, f)
	case "show":
		return h.Message(ctx, req.ID)
	case "mark":
		return h.MarkMessage(ctx, req.ID, store.Mark{Read: req.Read, Handled: req.Handled, Tag: req.Tag}, who)
	case "rm":
		if err := h.DeleteMessage(ctx, req.ID); err != nil {
			return nil, err
		}
		return map[string]any{"id": req.ID, "ok": true}, nil
	case "retry":
		return h.Retry(ctx, req.ID, who)
	case "cancel":
		return h.Cancel(ctx, req.ID, who)
	}
	return nil, fmt.Errorf("%w: unknown operation %q", ErrInvalid, op)
}

// MessageOpRefused says whether err is a refusal of a MessageOps request
// (bad input, an unknown id, a message in the wrong state), not a failure
// to commit.
func MessageOpRefused(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrWrongState)
}
