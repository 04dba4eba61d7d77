package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// StatsOps is the statistics operation, the same from every front end:
// the CLI (outpost stats), HTTP (GET /v1/stats) and MQTT (admin/stats,
// answered on admin/stats/reply).
var StatsOps = []string{"stats"}

// DefaultStatsSince is the window of a statistics request that gives
// none.
const DefaultStatsSince = 7 * 24 * time.Hour

// StatsRequest is the JSON of a statistics request: "number" (a phone
// number in any form a send takes, or an address: mailto:…, mqtt:<client
// id>, hub…; "": no sender), "since" (days "7d", a duration "36h" or an
// RFC 3339 time; default 7 days back from the daemon's clock), "modem"
// (one modem's id; "": every modem).
type StatsRequest struct {
	Number string `json:"number,omitempty"`
	Since  string `json:"since,omitempty"`
	Modem  string `json:"modem,omitempty"`
}

// Stats is what the statistics operation answers.
type Stats struct {
	OK    bool      `json:"ok"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Sender is the traffic of the address asked for.
	Sender   *SenderStats         `json:"sender,omitempty"`
	Modems   []store.ModemStats   `json:"modems,omitempty"`
	Channels []store.ChannelStats `json:"channels,omitempty"`
	Error    string               `json:"error,omitempty"`
}

// SenderStats is one address's traffic (store.SenderStats) with the
// address as the router reads it and what its times measure.
type SenderStats struct {
	Addr string `json:"addr"`
	store.SenderStats
	Timing string `json:"timing"`
}

// StatsTiming says what the average times of SenderStats measure.
const StatsTiming = "avg_to_sent_ms: from accepted (a scheduled message: from its time) to sent, " +
	"the last part handed to a modem (other channels: the destination's acknowledgement); " +
	"avg_to_delivered_ms: from accepted to delivered, the network's status report " +
	"(other channels: the destination's acknowledgement); each over the deliveries that got that far"

// ParseStatsSince reads a statistics window's start: days ("7d"), a
// duration ("36h") back from now, or an RFC 3339 time; "" is
// DefaultStatsSince back. A start after now is refused.
func ParseStatsSince(v string, now time.Time) (time.Time, error) {
	if strings.TrimSpace(v) == "" {
		return now.Add(-DefaultStatsSince), nil
	}
	return ParseSince(v, now)
}

// Stats runs the statistics operation given as JSON by a front end (see
// StatsRequest). A bad request is ErrInvalid with the reason.
func (h *Router) Stats(ctx context.Context, body []byte) (Stats, error) {
	var req StatsRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return Stats{}, fmt.Errorf(`%w: bad JSON: %v (want {"number": "+15555550100", "since": "7d", "modem": "m1"}, each optional)`, ErrInvalid, err)
		}
	}
	return h.StatsOf(ctx, req)
}

// StatsOf computes the statistics of req in one read transaction (no
// write lock: the committer goes on meanwhile), over the window from
// req.Since to the store's clock's now.
func (h *Router) StatsOf(ctx context.Context, req StatsRequest) (Stats, error) {
	now := h.Store.Now()
	since, err := ParseStatsSince(req.Since, now)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{OK: true, Since: since.UTC(), Until: now.UTC()}
	var from, connector, recipient string
	if strings.TrimSpace(req.Number) != "" {
		a, err := ParseAddress(req.Number)
		if err != nil {
			return Stats{}, fmt.Errorf(`%w: "number": %v`, ErrInvalid, err)
		}
		if a.Scheme == SchemeGroup || a.Scheme == SchemeTopic {
			return Stats{}, fmt.Errorf(`%w: "number" %s: statistics are of one address (a phone number, mailto:…), not of a %s`, ErrInvalid, a, a.Scheme)
		}
		from = a.String()
		if c := h.ConnectorFor(a.Scheme); c != nil {
			connector, recipient = c.Name(), a.Value
		}
		st.Sender = &SenderStats{Addr: from, Timing: StatsTiming}
	}
	modem := strings.TrimSpace(req.Modem)
	known := map[string]bool{}
	for _, id := range h.ModemIDs {
		known[id] = true
	}
	for id := range h.Modems() {
		known[id] = true
	}
	err = h.Store.View(ctx, func(tx *store.Tx) error {
		if modem != "" && !known[modem] {
			seen, err := tx.ModemSeen(modem)
			if err != nil {
				return err
			}
			if !seen {
				return fmt.Errorf("%w: modem %q: no such modem (known: %s)", ErrInvalid, modem, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
			}
		}
		if st.Sender != nil {
			s, err := tx.SenderStats(from, connector, recipient, since, time.Local)
			if err != nil {
				return err
			}
			st.Sender.SenderStats = s
		}
		if st.Modems, err = tx.ModemStats(since, modem); err != nil {
			return err
		}
		st.Channels, err = tx.ChannelStats(since)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	return st, nil
}
