package config

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Quota is the [quota] table: how much each source of sends may send, how
// many SMS one number may get, and the quiet hours.
type Quota struct {
	// SMSPerHour and SMSPerDay bound the SMS one source (an MQTT client,
	// an HTTP caller, a mail sender: the who of the audit log) may have
	// accepted in any hour and any day (0: no bound). A send to N numbers
	// counts N.
	SMSPerHour int `toml:"sms_per_hour"`
	SMSPerDay  int `toml:"sms_per_day"`
	// Sources override them for the sources whose who matches a glob
	// ([[quota.source]]); the first that matches applies.
	Sources []QuotaSource `toml:"source"`
	// PerNumberPerHour bounds the SMS one number gets in any hour (0: no
	// bound).
	PerNumberPerHour int `toml:"per_number_per_hour"`
	// QuietHours is "HH:MM-HH:MM" in Timezone (empty: none): sends below
	// QuietPriority wait for its end.
	QuietHours string `toml:"quiet_hours"`
	// Timezone is an IANA zone ("Africa/Nairobi"); empty: the box's.
	Timezone string `toml:"timezone"`
	// QuietPriority is the lowest priority that goes during the quiet
	// hours: low, normal, high, urgent, or a number -1–9.
	QuietPriority PriorityName `toml:"quiet_priority"`
}

// QuotaSource is one [[quota.source]]: the bounds of the sources whose
// who matches Who. A bound left out is [quota]'s.
type QuotaSource struct {
	Who        string `toml:"who"`
	SMSPerHour *int   `toml:"sms_per_hour"`
	SMSPerDay  *int   `toml:"sms_per_day"`
}

// PriorityNames are the names of priorities, with their numbers: a
// priority is a number from -1 to 9, higher first (the same table as
// bridge.Priorities).
var PriorityNames = map[string]int{"low": -1, "normal": 0, "high": 5, "urgent": 9}

// ParsePriority reads a priority: a name (low, normal, high, urgent) or a
// number from -1 to 9.
func ParsePriority(s string) (int, error) {
	if p, ok := PriorityNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return p, nil
	}
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < -1 || p > 9 {
		return 0, fmt.Errorf("must be low, normal, high, urgent or a number from -1 to 9 (higher goes first)")
	}
	return p, nil
}

// ParseQuietHours reads "21:00-07:00": the minutes after midnight the
// quiet hours start and end (end before start: they span midnight).
func ParseQuietHours(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf(`must be "HH:MM-HH:MM", such as "21:00-07:00"`)
	}
	clock := func(v string) (int, error) {
		t, err := time.Parse("15:04", strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf(`%q is not a time of day HH:MM: give "HH:MM-HH:MM", such as "21:00-07:00"`, strings.TrimSpace(v))
		}
		return t.Hour()*60 + t.Minute(), nil
	}
	if start, err = clock(a); err != nil {
		return 0, 0, err
	}
	if end, err = clock(b); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("starts and ends at the same time: give a span such as \"21:00-07:00\", or leave it empty for none")
	}
	return start, end, nil
}

// validate reports the problems of [quota].
func (q Quota) validate(bad func(field string, value any, why string)) {
	for _, f := range []struct {
		name string
		v    int
	}{{"quota.sms_per_hour", q.SMSPerHour}, {"quota.sms_per_day", q.SMSPerDay}, {"quota.per_number_per_hour", q.PerNumberPerHour}} {
		if f.v < 0 {
			bad(f.name, f.v, "must be 0 (no bound) or more")
		}
	}
	for i, s := range q.Sources {
		p := fmt.Sprintf("quota.source %d: ", i+1)
		if s.Who == "" {
			bad(p+"who", s.Who, `is missing: give the sources it applies to, a glob on who sends ("mqtt:sensor-*", "mailto:*@example.org", "user alice")`)
		} else if _, err := path.Match(s.Who, ""); err != nil {
			bad(p+"who", s.Who, "is not a valid glob (* ? [...]): "+err.Error())
		}
		if s.SMSPerHour != nil && *s.SMSPerHour < 0 {
			bad(p+"sms_per_hour", *s.SMSPerHour, "must be 0 (no bound) or more")
		}
		if s.SMSPerDay != nil && *s.SMSPerDay < 0 {
			bad(p+"sms_per_day", *s.SMSPerDay, "must be 0 (no bound) or more")
		}
	}
	if q.QuietHours != "" {
		if _, _, err := ParseQuietHours(q.QuietHours); err != nil {
			bad("quota.quiet_hours", q.QuietHours, err.Error())
		}
	}
	if q.Timezone != "" {
		if _, err := time.LoadLocation(q.Timezone); err != nil {
			bad("quota.timezone", q.Timezone, "is not a time zone (an IANA name such as \"Africa/Nairobi\"): "+err.Error())
		}
	}
	if _, err := ParsePriority(string(q.QuietPriority)); err != nil {
		bad("quota.quiet_priority", string(q.QuietPriority), err.Error())
	}
}

// PriorityName is a priority as the config gives it: a name ("urgent")
// or a number (5, or "5"), kept as text for ParsePriority.
type PriorityName string

// UnmarshalTOML takes a string or an integer.
func (p *PriorityName) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*p = PriorityName(v)
	case int64:
		*p = PriorityName(strconv.FormatInt(v, 10))
	default:
		return fmt.Errorf("must be a priority name (low, normal, high, urgent) or a number from -1 to 9, not %T", v)
	}
	return nil
}
