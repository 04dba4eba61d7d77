package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/store"
)

type outage struct{ err error }

func (o outage) Error() string { return o.err.Error() }
func (o outage) Unwrap() error { return o.err }

// Outage marks an error that says the destination cannot take anything
// now (no network, a server that does not answer), not that the message
// is bad: the delivery goes back to the queue without using up an
// attempt, and the dispatcher waits for the destination as a whole.
func Outage(err error) error { return outage{err} }

// IsOutage reports whether err was marked Outage.
func IsOutage(err error) bool {
	var o outage
	return errors.As(err, &o)
}

// unavailable is an outage of one destination of a connector, not of the
// connector (see Unavailable).
type unavailable struct {
	err  error
	wait time.Duration
}

func (u unavailable) Error() string { return u.err.Error() }
func (u unavailable) Unwrap() error { return u.err }

// Unavailable marks an error that says one destination among a
// connector's several (one webhook's receiver) cannot take anything now:
// the delivery goes back to the queue without using up an attempt, due
// again after wait, and the dispatcher goes on with the connector's other
// deliveries (an Outage would hold them all back). The connector keeps
// its own backoff for that destination.
func Unavailable(err error, wait time.Duration) error { return unavailable{err, max(wait, 0)} }

func isUnavailable(err error) bool { _, ok := unavailableFor(err); return ok }

// unavailableFor reports whether err was marked Unavailable, and its wait.
func unavailableFor(err error) (time.Duration, bool) {
	var u unavailable
	if errors.As(err, &u) {
		return u.wait, true
	}
	return 0, false
}

// dispatch delivers a connector's due deliveries one at a time until ctx
// ends: claim (queued → sending, committed), Deliver, then record the
// outcome or schedule a retry with capped exponential backoff. After an
// outage the connector is waited for with the same backoff, counted per
// connector: one delivery at a time is tried until one gets through, and
// no attempt is counted.
func (h *Router) dispatch(ctx context.Context, c Connector) {
	if _, ok := c.(Queuer); ok {
		return // it delivers from its own queue
	}
	l, ok := c.(Laned)
	if !ok {
		h.mu.Lock()
		wake := h.wake[c.Name()]
		h.mu.Unlock()
		h.dispatchLane(ctx, c, store.Lane{All: true}, wake)
		return
	}
	// One lane per destination, and one for the deliveries to any other
	// (a destination no longer configured: the connector fails them).
	lanes := l.Lanes()
	var wg sync.WaitGroup
	for _, lane := range append([]store.Lane{{Others: slices.Clone(lanes)}}, lanesOf(lanes)...) {
		wake := make(chan struct{}, 1)
		h.mu.Lock()
		h.laneWake[c.Name()] = append(h.laneWake[c.Name()], wake)
		h.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.dispatchLane(ctx, c, lane, wake)
		}()
	}
	wg.Wait()
}

func lanesOf(recipients []string) []store.Lane {
	out := make([]store.Lane, len(recipients))
	for i, r := range recipients {
		out[i] = store.Lane{Recipient: r}
	}
	return out
}

// Laned is implemented by connectors whose destinations are independent
// of each other (one webhook's receiver and another's): the dispatcher
// runs one lane per destination, so that a slow or unavailable one holds
// back only its own deliveries, and each destination gets its deliveries
// one at a time, oldest first (store.Lane). Lanes lists them (the
// recipients).
type Laned interface {
	Lanes() []string
}

// dispatchLane is dispatch for the deliveries of one lane.
func (h *Router) dispatchLane(ctx context.Context, c Connector, lane store.Lane, wake chan struct{}) {
	waiter, _ := c.(Waiter)
	down := 0 // consecutive outages
	for ctx.Err() == nil {
		if h.Paused(c.Name()) {
			// Nothing is claimed: the deliveries keep their place and
			// their attempts; Resume wakes the lane.
			select {
			case <-ctx.Done():
			case <-wake:
			}
			continue
		}
		if waiter != nil && waiter.WaitReady(ctx) != nil {
			return
		}
		limit := 16
		if down > 0 {
			limit = 1
		}
		var claimed []store.Delivery
		err := h.Store.Update(ctx, func(tx *store.Tx) error {
			if err := h.holdQuiet(tx, c); err != nil { // quota.go
				return err
			}
			ds, err := tx.ClaimDueLane(c.Name(), lane, limit)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if err := h.notify(tx, d, fmt.Sprintf("attempt %d", d.Attempts)); err != nil {
					return err
				}
			}
			claimed = ds
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.Log.Error("claim deliveries", "connector", c.Name(), "err", err)
			sleep(ctx, time.Second)
			continue
		}
		cause := h.deliverAll(ctx, c, claimed)
		if cause != nil {
			down++
			wait := h.backoff(down)
			h.Log.Warn("destination unavailable; waiting for it", "connector", c.Name(), "err", cause, "retry_in", wait.String(), "outages", down)
			sleep(ctx, wait)
			continue
		}
		if len(claimed) > 0 {
			down = 0
			continue
		}
		wait := time.Minute
		var next time.Time
		h.Store.View(ctx, func(tx *store.Tx) (err error) { next, err = tx.NextDueLane(c.Name(), lane); return })
		if !next.IsZero() {
			wait = min(max(next.Sub(h.Store.Now()), 0), time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Parallel is implemented by a connector that can deliver several at
// once (the SMS connector: one part per modem): Parallel says how many.
// Deliveries to one recipient still go one after the other, in order.
type Parallel interface {
	Parallel() int
}

// deliverAll delivers claimed deliveries, several at once when c is
// Parallel, and returns the first outage: the deliveries not yet started
// then go back to the queue untried.
func (h *Router) deliverAll(ctx context.Context, c Connector, claimed []store.Delivery) error {
	n := 1
	if p, ok := c.(Parallel); ok {
		n = max(p.Parallel(), 1)
	}
	var mu sync.Mutex
	var cause error
	outage := func() error {
		mu.Lock()
		defer mu.Unlock()
		return cause
	}
	one := func(d store.Delivery) {
		if err := outage(); err != nil {
			h.putBack(ctx, c, d, err)
			return
		}
		if err := h.deliverOne(ctx, c, d); IsOutage(err) {
			mu.Lock()
			if cause == nil {
				cause = err
			}
			mu.Unlock()
		}
	}
	if n == 1 {
		for _, d := range claimed {
			one(d)
		}
		return cause
	}
	var order []string
	chains := map[string][]store.Delivery{}
	for _, d := range claimed {
		if _, ok := chains[d.Recipient]; !ok {
			order = append(order, d.Recipient)
		}
		chains[d.Recipient] = append(chains[d.Recipient], d)
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, r := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, d := range chains[r] {
				one(d)
			}
		}()
	}
	wg.Wait()
	return cause
}

// putBack returns a claimed delivery that was not tried, because its
// connector turned out to be unavailable, to the queue uncounted.
func (h *Router) putBack(ctx context.Context, c Connector, d store.Delivery, cause error) {
	t := store.Transition{State: store.Queued, Uncounted: true, LastError: cause.Error(),
		Detail: fmt.Sprintf("not tried, not counted: %s is unavailable: %v", c.Name(), cause)}
	h.record(ctx, c, d, t, -1)
}

// deliverOne tries one delivery and records the outcome. It returns
// Deliver's error.
func (h *Router) deliverOne(ctx context.Context, c Connector, d store.Delivery) error {
	log := h.Log.With("connector", c.Name(), "msg_id", d.MessageID, "to", d.Recipient)
	m, ok, err := h.takeOff(ctx, d)
	if !ok {
		log.Info("not delivered: cancelled after it was claimed")
		return nil
	}
	defer h.land(d.ID)
	var out Outcome
	if err == nil {
		out, err = c.Deliver(ctx, m, d)
	}
	// What a delivery error says goes into the log and the history.
	err = redactErr(err)
	if ctx.Err() != nil {
		// Shutting down: leave it in sending; the next start retries it.
		return err
	}
	var t store.Transition
	var wait time.Duration // before a retry
	switch {
	case err == nil:
		t = store.Transition{State: out.State, Detail: RedactURLs(out.Detail)}
		if t.State == "" {
			t.State = store.Sent
		}
		log.Info("delivered", "state", t.State, "detail", t.Detail)
	case isUnavailable(err):
		// One destination of the connector is down: this delivery waits
		// (uncounted) for as long as the connector says; the others go on.
		wait, _ = unavailableFor(err)
		t = store.Transition{State: store.Queued, Uncounted: true, LastError: err.Error(),
			Detail: fmt.Sprintf("not counted: %v; tried again within %s", err, wait.Round(time.Millisecond))}
		log.Info("destination unavailable; the message waits", "err", err, "retry_in", wait.String())
	case IsOutage(err):
		// Back in the queue, the attempt not counted, behind those due
		// already: the next probe of the connector is another message,
		// so one that only looks like an outage does not hold the rest.
		// The dispatcher waits for the connector.
		t = store.Transition{State: store.Queued, Uncounted: true, LastError: err.Error(),
			Detail: fmt.Sprintf("not counted: %s is unavailable, waiting for it: %v", c.Name(), err)}
		log.Warn("destination unavailable; the message waits", "err", err)
	case IsPermanent(err) || d.Attempts >= h.MaxAttempts:
		t = store.Transition{State: store.Failed, LastError: err.Error()}
		if !IsPermanent(err) {
			t.Detail = fmt.Sprintf("gave up after %d attempts: %v", d.Attempts, err)
		}
		log.Warn("delivery failed", "state", t.State, "err", err)
	default:
		wait = h.backoff(d.Attempts)
		// NextAt is set below from the transaction's clock, which the
		// store keeps in step across jumps (package clock).
		t = store.Transition{State: store.Queued, LastError: err.Error(),
			Detail: fmt.Sprintf("attempt %d failed, retry in %s: %v", d.Attempts, wait.Round(time.Second), err)}
		log.Warn("delivery failed; will retry", "err", err, "retry_in", wait.String())
	}
	h.record(ctx, c, d, t, wait)
	return err
}

// takeOff marks a claimed delivery as being delivered, so that Cancel
// leaves it to finish, and reads its message, in one read with the
// delivery's state: ok is false when it was cancelled since it was
// claimed (nothing to deliver).
func (h *Router) takeOff(ctx context.Context, d store.Delivery) (m store.Message, ok bool, err error) {
	h.flightMu.Lock()
	h.inflight[d.ID] = true
	h.flightMu.Unlock()
	var cur store.Delivery
	err = h.Store.View(ctx, func(tx *store.Tx) (err error) {
		if cur, err = tx.Delivery(d.ID); err != nil {
			return err
		}
		if m, err = tx.Message(d.MessageID); err != nil {
			return err
		}
		return h.optedOutSince(tx, m, d)
	})
	if err == nil && cur.State != store.Sending {
		h.land(d.ID)
		return m, false, nil
	}
	return m, true, err
}

// land ends what takeOff began.
func (h *Router) land(id int64) {
	h.flightMu.Lock()
	delete(h.inflight, id)
	h.flightMu.Unlock()
}

// record commits the outcome t of a claimed delivery; one queued again
// is due after wait, by the transaction's clock (wait < 0: it keeps the
// due time it had, ahead of those tried since).
func (h *Router) record(ctx context.Context, c Connector, d store.Delivery, t store.Transition, wait time.Duration) {
	err := h.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		cur, err := tx.Delivery(d.ID)
		if err != nil {
			return err
		}
		if cur.State != store.Sending {
			// Settled while it was being delivered (a status report can
			// overtake the end of a multi-part send): keep the newer
			// state; the outcome goes into the history.
			return tx.AppendEvent(d.MessageID, d.ID, cur.State, t.State+": "+t.Summary())
		}
		if t.State == store.Queued && wait >= 0 {
			t.NextAt = tx.Now().Add(wait)
		}
		_, err = h.Transition(tx, d.ID, t)
		if t.State == store.Queued && !d.ExpiresAt.IsZero() {
			tx.AfterCommit(h.watchExpiry)
		}
		return err
	})
	if err != nil {
		h.Log.Error("record delivery outcome", "connector", c.Name(), "msg_id", d.MessageID, "err", err)
	}
}

// expire moves deliveries past their expiry to state expired, whether or
// not their connector can deliver now (a message that expired while the
// modem was unplugged says so at once), waking for the next expiry.
func (h *Router) expire(ctx context.Context) {
	for ctx.Err() == nil {
		var next time.Time
		err := h.Store.Update(ctx, func(tx *store.Tx) error {
			ds, err := tx.ExpireDue()
			if err != nil {
				return err
			}
			for _, d := range ds {
				if err := h.notify(tx, d, "not sent: expired at "+d.ExpiresAt.Format(time.RFC3339)); err != nil {
					return err
				}
				h.Log.Info("message expired before it was sent", "msg_id", d.MessageID, "to", d.Recipient)
			}
			next, err = tx.NextExpiry()
			return err
		})
		wait := time.Minute
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			h.Log.Error("expire deliveries", "err", err)
			wait = time.Second
		case !next.IsZero():
			wait = min(max(next.Sub(h.Store.Now()), 0), time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-h.expiry:
		case <-t.C:
		}
		t.Stop()
	}
}

// Managed is what Retry or Cancel did to a message: the destinations it
// changed, the others counted by state, and a sentence that says both.
type Managed struct {
	Deliveries []store.Delivery `json:"deliveries"`
	Unchanged  map[string]int   `json:"unchanged,omitempty"`
	Summary    string           `json:"summary"`
}

func managed(r store.Managed, done, not string) Managed {
	m := Managed{Deliveries: r.Changed, Unchanged: r.Left}
	total := len(r.Changed)
	for _, n := range r.Left {
		total += n
	}
	m.Summary = fmt.Sprintf("%s %d of %d destinations", done, len(r.Changed), total)
	if len(r.Left) > 0 {
		m.Summary += "; " + not + ": " + store.CountStates(r.Left)
	}
	return m
}

// Retry puts a message's failed or expired destinations back in the queue
// with their attempts reset; by (the CLI, an API client) goes into the
// history. store.ErrNotFound for an unknown id, store.ErrWrongState (the
// states counted) when nothing is failed or expired.
func (h *Router) Retry(ctx context.Context, id, by string) (Managed, error) {
	var r store.Managed
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if r, err = tx.RetryDeliveries(id, by); err != nil {
			return err
		}
		if err := h.auditManaged(ctx, tx, "retry", id, by, r); err != nil {
			return err
		}
		for _, d := range r.Changed {
			if err := h.notify(tx, d, "retried by "+by); err != nil {
				return err
			}
			if c := h.connector(d.Connector); c != nil {
				if _, ok := c.(Queuer); ok {
					m, err := tx.Message(d.MessageID)
					if err != nil {
						return err
					}
					if err := h.enqueue(tx, c, &m, d); err != nil {
						return err
					}
				}
			}
			tx.AfterCommit(func() { h.Wake(d.Connector) })
		}
		return nil
	})
	if err != nil {
		return Managed{}, err
	}
	h.Log.Info("message retried", "msg_id", id, "by", by, "destinations", len(r.Changed))
	return managed(r, "queued again", "not retried"), nil
}

// Cancel cancels a message's queued or scheduled destinations (final: the
// dispatcher and the expiry loop leave them alone); by goes into the
// history of each. Destinations being sent right now finish their attempt
// (their parts may already be with the network): they are counted in the
// answer, and a cancel after that attempt catches any put back in the
// queue. store.ErrNotFound for an unknown id, store.ErrWrongState (the
// states counted) when nothing could be cancelled.
func (h *Router) Cancel(ctx context.Context, id, by string) (Managed, error) {
	var r store.Managed
	// A destination claimed by its dispatcher (state sending) but not yet
	// handed to its connector is cancelled too: held here, the
	// dispatcher cannot start it until this commits, and then sees it
	// cancelled (takeOff).
	h.flightMu.Lock()
	defer h.flightMu.Unlock()
	busy := func(d int64) bool { return h.inflight[d] }
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if r, err = tx.CancelDeliveries(id, by, busy); err != nil {
			return err
		}
		if err := h.auditManaged(ctx, tx, "cancel", id, by, r); err != nil {
			return err
		}
		for _, d := range r.Changed {
			if err := h.notify(tx, d, "cancelled by "+by); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Managed{}, err
	}
	h.Log.Info("message cancelled", "msg_id", id, "by", by, "destinations", len(r.Changed), "being_sent", r.Left[store.Sending])
	m := managed(r, "cancelled", "not cancelled")
	if r.Left[store.Sending] > 0 {
		m.Summary += " (being sent right now: they finish this attempt; cancel again after it to catch any put back in the queue)"
	}
	return m, nil
}

// backoff is capped exponential with jitter: RetryMin·2^(n-1), at most
// RetryMax, scaled by a random factor in [0.5, 1].
func (h *Router) backoff(attempt int) time.Duration {
	d := h.RetryMin
	for i := 1; i < attempt && d < h.RetryMax; i++ {
		d *= 2
	}
	d = min(d, h.RetryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
