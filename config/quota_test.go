package config

import (
	"strings"
	"testing"
)

// TestQuotaSection: [quota] and [[quota.source]] load with their
// defaults (nothing bounded, quiet_priority urgent; a source's bound left
// out is [quota]'s), and every bad value is reported with its field.
func TestQuotaSection(t *testing.T) {
	c, err := Check("q.toml", []byte(`gateway_id = "gw"
[quota]
sms_per_hour = 20
per_number_per_hour = 3
quiet_hours = "21:00-07:00"
timezone = "Africa/Nairobi"
[[quota.source]]
who = "mqtt:sensor-*"
sms_per_day = 100
`))
	if err != nil {
		t.Fatal(err)
	}
	q := c.Quota
	if q.SMSPerHour != 20 || q.SMSPerDay != 0 || q.PerNumberPerHour != 3 || q.QuietPriority != "urgent" || len(q.Sources) != 1 ||
		q.Sources[0].SMSPerHour != nil || q.Sources[0].SMSPerDay == nil || *q.Sources[0].SMSPerDay != 100 {
		t.Fatalf("quota %+v", q)
	}
	if d := Default().Quota; d.SMSPerHour != 0 || d.SMSPerDay != 0 || d.PerNumberPerHour != 0 || d.QuietHours != "" || d.QuietPriority != "urgent" {
		t.Errorf("default quota %+v", d)
	}
	_, err = Check("bad.toml", []byte(`gateway_id = "gw"
[quota]
sms_per_hour = -1
quiet_hours = "21:00-25:00"
timezone = "Mars/Olympus"
quiet_priority = "critical"
[[quota.source]]
sms_per_hour = -2
[[quota.source]]
who = "mqtt:[x"
`))
	if err == nil {
		t.Fatal("bad [quota] accepted")
	}
	for _, want := range []string{"quota.sms_per_hour", `quota.quiet_hours = "21:00-25:00"`, "quota.timezone", "quota.quiet_priority", "quota.source 1: who",
		"quota.source 1: sms_per_hour", "quota.source 2: who"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not reported:\n%v", want, err)
		}
	}
}

// quota.quiet_priority takes a number as --priority does, written as a
// TOML integer too (it was refused: "must be a string").
func TestQuietPriorityNumber(t *testing.T) {
	for _, v := range []string{`5`, `"5"`, `"high"`, `-1`} {
		c, err := Check("q.toml", []byte("[quota]\nquiet_priority = "+v+"\n"))
		if err != nil {
			t.Errorf("quiet_priority = %s: %v", v, err)
			continue
		}
		if want := strings.Trim(v, `"`); string(c.Quota.QuietPriority) != want {
			t.Errorf("quiet_priority = %s read as %q", v, c.Quota.QuietPriority)
		}
	}
	for _, v := range []string{`10`, `true`, `"critical"`} {
		if _, err := Check("q.toml", []byte("[quota]\nquiet_priority = "+v+"\n")); err == nil || !strings.Contains(err.Error(), "quiet_priority") {
			t.Errorf("quiet_priority = %s: %v, want a problem naming it", v, err)
		}
	}
}
