package main

import (
	"fmt"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/config"
)

// quotaPolicy is the router's sending policy from the config's [quota]
// (checked by config.Validate).
func quotaPolicy(q config.Quota) (bridge.Quota, error) {
	out := bridge.Quota{SMSPerHour: q.SMSPerHour, SMSPerDay: q.SMSPerDay, PerNumberPerHour: q.PerNumberPerHour}
	for _, s := range q.Sources {
		sq := bridge.SourceQuota{Who: s.Who, SMSPerHour: q.SMSPerHour, SMSPerDay: q.SMSPerDay}
		if s.SMSPerHour != nil {
			sq.SMSPerHour = *s.SMSPerHour
		}
		if s.SMSPerDay != nil {
			sq.SMSPerDay = *s.SMSPerDay
		}
		out.Sources = append(out.Sources, sq)
	}
	if q.QuietHours == "" {
		return out, nil
	}
	start, end, err := config.ParseQuietHours(q.QuietHours)
	if err != nil {
		return out, fmt.Errorf("quota.quiet_hours: %w", err)
	}
	loc := time.Local
	if q.Timezone != "" {
		if loc, err = time.LoadLocation(q.Timezone); err != nil {
			return out, fmt.Errorf("quota.timezone: %w", err)
		}
	}
	p, err := bridge.ParsePriority(q.QuietPriority)
	if err != nil {
		return out, fmt.Errorf("quota.quiet_priority: %w", err)
	}
	out.Quiet = &bridge.QuietHours{Start: start, End: end, Loc: loc, Priority: p}
	return out, nil
}
