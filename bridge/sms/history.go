package sms

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/store"
)

// History samples each modem's radio (signal, registration, operator,
// network) into the store and reports it (outpost modems). The SD card
// sees few writes: a sample per modem every Every and on a change of
// state, registration, operator or network (not of signal alone), held
// in memory and written in one transaction every three periods (and at
// the end); samples older than Keep are pruned.
type History struct {
	Store *store.Store
	Log   *slog.Logger
	Every time.Duration // default 5 min
	Keep  time.Duration // default 7 days

	mu     sync.Mutex
	status map[string]hw.Status
	marks  map[string]mark
	buf    []store.ModemSample
}

// mark is what a modem's last sample was, and when (monotonic).
type mark struct {
	at  time.Time
	key string
}

func sampleKey(s hw.Status) string {
	return strings.Join([]string{s.State, s.Registration, s.Operator, s.Network}, "\x00")
}

func (h *History) init() {
	if h.status == nil {
		h.status, h.marks = map[string]hw.Status{}, map[string]mark{}
	}
	if h.Every <= 0 {
		h.Every = 5 * time.Minute
	}
	if h.Keep <= 0 {
		h.Keep = 7 * 24 * time.Hour
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
}

// Observe takes a modem's new status (router.OnModemStatus).
func (h *History) Observe(id string, status any) {
	st, ok := status.(hw.Status)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.init()
	h.status[id] = st
	if m, ok := h.marks[id]; !ok || m.key != sampleKey(st) {
		h.sample(id, st)
	}
}

// sample buffers one sample. Called with h.mu held.
func (h *History) sample(id string, st hw.Status) {
	h.marks[id] = mark{at: time.Now(), key: sampleKey(st)}
	h.buf = append(h.buf, store.ModemSample{Modem: id, At: h.Store.Now(), State: st.State, Signal: st.Signal,
		Registration: st.Registration, Operator: st.Operator, Network: st.Network})
}

// Run samples every Every and writes the samples until ctx ends, then
// writes what is left.
func (h *History) Run(ctx context.Context) {
	h.mu.Lock()
	h.init()
	every := h.Every
	h.mu.Unlock()
	tick := time.NewTicker(every)
	defer tick.Stop()
	flushed, pruned := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			// The store outlives the connectors: a last write.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h.flush(fctx)
			cancel()
			return
		case <-tick.C:
		}
		h.mu.Lock()
		for id, st := range h.status {
			if time.Since(h.marks[id].at) >= every*9/10 {
				h.sample(id, st)
			}
		}
		h.mu.Unlock()
		if time.Since(flushed) >= 3*every*9/10 {
			h.flush(ctx)
			flushed = time.Now()
		}
		if pruned.IsZero() || time.Since(pruned) >= time.Hour {
			err := h.Store.Update(ctx, func(tx *store.Tx) error {
				_, err := tx.PruneModemSamples(tx.Now().Add(-h.Keep))
				return err
			})
			if err != nil && ctx.Err() == nil {
				h.Log.Warn("pruning modem history", "err", err)
			}
			pruned = time.Now()
		}
	}
}

func (h *History) flush(ctx context.Context) {
	h.mu.Lock()
	buf := h.buf
	h.buf = nil
	h.mu.Unlock()
	if len(buf) == 0 {
		return
	}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error { return tx.AddModemSamples(buf) }); err != nil {
		h.Log.Warn("modem history not written; kept for the next write", "samples", len(buf), "err", err)
		h.mu.Lock()
		h.buf = append(buf, h.buf...)
		h.mu.Unlock()
	}
}

// Samples returns a modem's samples since then: stored and still in
// memory, oldest first.
func (h *History) Samples(ctx context.Context, id string, since time.Time) ([]store.ModemSample, error) {
	var out []store.ModemSample
	err := h.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.ModemSamples(id, since)
		return err
	})
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.buf {
		if s.Modem == id && !s.At.Before(since) {
			out = append(out, s)
		}
	}
	return out, nil
}

// ModemReport is one modem as outpost modems shows it.
type ModemReport struct {
	ID           string `json:"id"`
	Device       string `json:"device,omitempty"`
	IMEI         string `json:"imei,omitempty"`
	ICCID        string `json:"iccid,omitempty"`
	Number       string `json:"number,omitempty"`
	State        string `json:"state"`
	Registration string `json:"registration,omitempty"`
	Operator     string `json:"operator,omitempty"`
	Network      string `json:"network,omitempty"`
	Signal       int    `json:"signal"`
	SignalDBm    int    `json:"signal_dbm,omitempty"`
	// Trend is the signal over the last 24 hours.
	Trend Trend `json:"trend"`
	// Today counts the day's traffic (the box's local day).
	Today Today `json:"today"`
	// Balance is the prepaid credit, when read (USSD).
	Balance   any       `json:"balance,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Hangs     int       `json:"hangs"`
	Resets    int       `json:"resets"`
	LastReset string    `json:"last_reset,omitempty"`
	ResetAt   time.Time `json:"reset_at,omitzero"`
	// Changes are the last day's changes of state, registration,
	// operator or network, oldest first (at most 10).
	Changes []store.ModemSample `json:"changes,omitempty"`
}

// Trend summarises signal samples (rssi 0-31; unknown ones left out).
type Trend struct {
	Samples int `json:"samples"`
	Min     int `json:"min"`
	Avg     int `json:"avg"`
	Max     int `json:"max"`
	// Spark is the day in 24 hourly marks, oldest first (· no sample).
	Spark string `json:"spark"`
}

// Today is a modem's traffic since local midnight.
type Today struct {
	Sent     int `json:"sent"`
	Parts    int `json:"parts"`
	Failed   int `json:"failed"`
	Received int `json:"received"`
}

func trend(ss []store.ModemSample, now time.Time) Trend {
	var t Trend
	sum := 0
	var hours [24][]int
	for _, s := range ss {
		if s.Signal < 0 || s.Signal > 31 {
			continue
		}
		if t.Samples == 0 || s.Signal < t.Min {
			t.Min = s.Signal
		}
		t.Max = max(t.Max, s.Signal)
		sum += s.Signal
		t.Samples++
		if h := 23 - int(now.Sub(s.At)/time.Hour); h >= 0 && h < 24 {
			hours[h] = append(hours[h], s.Signal)
		}
	}
	if t.Samples > 0 {
		t.Avg = (sum + t.Samples/2) / t.Samples
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, hv := range hours {
		if len(hv) == 0 {
			b.WriteRune('·')
			continue
		}
		s := 0
		for _, v := range hv {
			s += v
		}
		b.WriteRune(bars[min(s/len(hv)*len(bars)/32, len(bars)-1)])
	}
	t.Spark = b.String()
	return t
}

// Report describes the modems ids: status now (statuses, from
// router.Modems), signal over the last day, today's traffic.
func (h *History) Report(ctx context.Context, ids []string, numbers map[string]string, statuses map[string]any) ([]ModemReport, error) {
	now := h.Store.Now()
	l := now.Local()
	midnight := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.Local)
	out := make([]ModemReport, 0, len(ids))
	for _, id := range ids {
		r := ModemReport{ID: id, Number: numbers[id], State: hw.StateConnecting, Signal: 99}
		if st, ok := statuses[id].(hw.Status); ok {
			r.Device, r.IMEI, r.ICCID, r.State = st.Device, st.IMEI, st.ICCID, st.State
			r.Registration, r.Operator, r.Network, r.Signal, r.SignalDBm = st.Registration, st.Operator, st.Network, st.Signal, st.SignalDBm
			r.LastError, r.Since, r.Hangs, r.Resets, r.LastReset, r.ResetAt = st.Error, st.Since, st.Hangs, st.Resets, st.LastReset, st.ResetAt
			if st.Balance != nil {
				r.Balance = st.Balance
			}
		}
		ss, err := h.Samples(ctx, id, now.Add(-24*time.Hour))
		if err != nil {
			return nil, err
		}
		r.Trend = trend(ss, now)
		prev := ""
		for _, s := range ss {
			k := strings.Join([]string{s.State, s.Registration, s.Operator, s.Network}, "\x00")
			if k != prev {
				r.Changes = append(r.Changes, s)
				prev = k
			}
		}
		if len(r.Changes) > 10 {
			r.Changes = r.Changes[len(r.Changes)-10:]
		}
		err = h.Store.View(ctx, func(tx *store.Tx) error {
			ms, err := tx.ModemStats(midnight, id)
			if err == nil && len(ms) > 0 {
				r.Today = Today{Sent: ms[0].MessagesSent, Parts: ms[0].PartsSent, Failed: ms[0].Failed, Received: ms[0].MessagesReceived}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
