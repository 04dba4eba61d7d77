package bridge_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// BenchmarkSubmitQuota: what the quota checks and counts add to a send
// (one SMS, one source) and to a group send of 1,000 numbers, each
// counted against per_number_per_hour.
func BenchmarkSubmitQuota(b *testing.B) {
	members := make([]string, 1000)
	for i := range members {
		members[i] = fmt.Sprintf("+1555560%04d", i)
	}
	for _, c := range []struct {
		name  string
		quota bridge.Quota
		to    string
	}{
		{"one/off", bridge.Quota{}, "+15555550100"},
		{"one/on", bridge.Quota{SMSPerHour: 1 << 30, SMSPerDay: 1 << 30, PerNumberPerHour: 1 << 30}, "+15555550100"},
		{"group1000/off", bridge.Quota{}, "group:all"},
		{"group1000/on", bridge.Quota{SMSPerHour: 1 << 30, SMSPerDay: 1 << 30, PerNumberPerHour: 1 << 30}, "group:all"},
	} {
		b.Run(c.name, func(b *testing.B) {
			st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "outpost.db"), store.Options{Synchronous: "OFF"})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			h := bridge.New(st, nil)
			h.Add(&fake{})
			h.Groups = map[string][]string{"all": members}
			h.Quota = c.quota
			b.ResetTimer()
			for range b.N {
				if _, err := h.Submit(context.Background(), bridge.SendRequest{To: []string{c.to}, Text: "x", Source: "mqtt", By: "mqtt:bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
