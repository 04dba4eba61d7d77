package mqtt

import (
	"context"
	"fmt"

	"github.com/outpost-sms/outpost/bridge"
)

// The USSD operation on admin/ussd: {"modem": "m1", "code": "*100#",
// "answers": ["1"]} (bridge.USSDOp). The reply holds every screen; a
// session the network refused or ended early is ok false with the error.
func init() {
	ownTopics = append(ownTopics, "admin/ussd/reply")
	adminFamilies = append(adminFamilies, adminFamily{
		ops: []string{"ussd"},
		run: func(c *Connector, ctx context.Context, op string, payload []byte) (any, error) {
			if len(payload) > MaxSendRequest {
				return nil, fmt.Errorf("%w: the request is too large", bridge.ErrInvalid)
			}
			ans, err := c.router.USSDOp(ctx, payload)
			return AdminReply{OK: ans.OK, Result: ans, Error: ans.Error}, err
		},
		refused: func(err error) any {
			if !bridge.MessageOpRefused(err) && !bridge.IsOutage(err) {
				return nil
			}
			return AdminReply{Error: refusal(err)}
		},
	})
}
