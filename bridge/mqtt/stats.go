package mqtt

import (
	"context"
	"errors"

	"github.com/outpost-sms/outpost/bridge"
)

// The statistics (bridge.StatsOps) on admin/stats: {"number", "since",
// "modem"}, each optional; the answer, bridge.Stats, on
// admin/stats/reply ({"ok": false, "error"} for a bad request). Nothing
// is written: the PUBACK follows the read.
func init() {
	adminFamilies = append(adminFamilies, adminFamily{
		ops: bridge.StatsOps,
		run: func(c *Connector, ctx context.Context, _ string, payload []byte) (any, error) {
			return c.router.Stats(ctx, payload)
		},
		refused: func(err error) any {
			if !errors.Is(err, bridge.ErrInvalid) {
				return nil
			}
			return bridge.Stats{Error: refusal(err)}
		},
	})
	for _, op := range bridge.StatsOps {
		ownTopics = append(ownTopics, "admin/"+op+"/reply")
	}
}
