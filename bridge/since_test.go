package bridge_test

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
)

// One --since for every front end (audit, messages, statistics): days,
// a duration or an RFC 3339 time; a time after now is refused (messages
// and audit answered an empty list for it, statistics refused it).
func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"36h":                  now.Add(-36 * time.Hour),
		"2026-12-01T00:00:00Z": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := bridge.ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"2099-01-01T00:00:00Z", "yesterday", "-1h", "7x"} {
		if _, err := bridge.ParseSince(in, now); !errors.Is(err, bridge.ErrInvalid) {
			t.Errorf("%q: %v, want a refusal", in, err)
		}
	}
}
