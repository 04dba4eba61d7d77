package bridge

import "testing"

// A mail sender is known in lower case (mailto: addresses are compared
// so): a [[quota.source]] glob written with capitals, as people write
// domains, still matches it (it never did: the bound was silently off).
func TestQuotaMailGlobAnyCase(t *testing.T) {
	q := Quota{SMSPerHour: 100, Sources: []SourceQuota{{Who: "mailto:*@Example.org", SMSPerHour: 1}}}
	if h, _, from := q.limits("mailto:ops@example.org"); h != 1 {
		t.Errorf("mailto:ops@example.org: %d an hour from %s, want 1 from the source's glob", h, from)
	}
	if h, _, _ := q.limits("mailto:ops@example.com"); h != 100 {
		t.Errorf("another domain: %d an hour, want [quota]'s 100", h)
	}
	q = Quota{SMSPerHour: 100, Sources: []SourceQuota{{Who: "mqtt:Sensor-*", SMSPerHour: 1}}}
	if h, _, _ := q.limits("mqtt:sensor-1"); h != 100 {
		t.Errorf("an MQTT client id is case-sensitive: mqtt:sensor-1 got %d, want 100", h)
	}
}
