package mqtt

import (
	"context"
	"errors"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// The message management operations on admin/<op>: messages, show,
// mark, rm, retry, cancel (bridge.MessageOps).
func init() {
	adminFamilies = append(adminFamilies, adminFamily{
		ops: bridge.MessageOps,
		run: func(c *Connector, ctx context.Context, op string, payload []byte) (any, error) {
			r, err := c.router.MessageOp(ctx, op, payload)
			return AdminReply{OK: true, Result: r}, err
		},
		refused: func(err error) any {
			if !bridge.MessageOpRefused(err) {
				return nil
			}
			msg := refusal(err)
			if errors.Is(err, store.ErrNotFound) {
				msg = "no such message: " + msg
			}
			return AdminReply{Error: msg}
		},
	})
}
