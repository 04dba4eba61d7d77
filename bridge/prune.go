package bridge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// Pruner deletes old finished messages (retention.messages) and old
// history (retention.events) in small batches through the group
// committer, one batch per write with a pause between, holding back while
// other writes wait: never a long write lock.
type Pruner struct {
	Store    *store.Store
	Log      *slog.Logger
	Messages time.Duration // 0: keep them
	Events   time.Duration // 0: keep it
	// Batch is the rows per write (default 500); Pause the time between
	// two (default 50 ms); Every the time between two runs (default 1
	// hour; the first runs a minute after start).
	Batch int
	Pause time.Duration
	Every time.Duration
	First time.Duration

	mu    sync.Mutex
	stats PruneStats
}

// PruneStats is what the pruner did since start (outpost status).
type PruneStats struct {
	KeepFor     string `json:"messages_kept_for"`
	EventsFor   string `json:"events_kept_for"`
	Pruned      int64  `json:"messages_pruned"`
	EventsGone  int64  `json:"events_pruned"`
	Runs        int    `json:"runs"`
	LastRunTook string `json:"last_run_took,omitempty"`
	LastError   string `json:"last_error,omitempty"`
}

// Stats returns the pruner's counts.
func (p *Pruner) Stats() PruneStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.KeepFor, s.EventsFor = keptFor(p.Messages), keptFor(p.Events)
	return s
}

func keptFor(d time.Duration) string {
	if d <= 0 {
		return "forever"
	}
	return d.String()
}

func (p *Pruner) defaults() {
	if p.Batch <= 0 {
		p.Batch = 500
	}
	if p.Pause <= 0 {
		p.Pause = 50 * time.Millisecond
	}
	if p.Every <= 0 {
		p.Every = time.Hour
	}
	if p.First <= 0 {
		p.First = time.Minute
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
}

// Run prunes now and then until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	p.defaults()
	if p.Messages <= 0 && p.Events <= 0 {
		return
	}
	t := time.NewTimer(p.First)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs, evs, err := p.Once(ctx)
		if err != nil && ctx.Err() == nil {
			p.Log.Warn("retention: pruning stopped; trying again later", "err", err)
		} else if msgs+evs > 0 {
			p.Log.Info("retention: pruned", "messages", msgs, "events", evs)
		}
		t.Reset(p.Every)
	}
}

// Once prunes until nothing is left to prune, batch by batch, and returns
// how many messages and history entries it deleted.
func (p *Pruner) Once(ctx context.Context) (msgs, evs int64, err error) {
	p.defaults()
	start := time.Now()
	defer func() {
		p.mu.Lock()
		p.stats.Runs++
		p.stats.LastRunTook = time.Since(start).Round(time.Millisecond).String()
		p.stats.LastError = ""
		if err != nil {
			p.stats.LastError = err.Error()
		}
		p.mu.Unlock()
	}()
	for _, job := range []struct {
		age   time.Duration
		fn    func(*store.Tx, time.Duration, int) (int64, error)
		total *int64
		count *int64
	}{
		{p.Messages, (*store.Tx).PruneMessages, &msgs, &p.stats.Pruned},
		{p.Events, (*store.Tx).PruneEvents, &evs, &p.stats.EventsGone},
	} {
		for job.age > 0 {
			// Quiet moments: while other writes wait, they go first.
			for i := 0; i < 20 && p.Store.Waiting() > 0; i++ {
				if err := pauseFor(ctx, p.Pause); err != nil {
					return msgs, evs, err
				}
			}
			var n int64
			err := p.Store.Update(ctx, func(tx *store.Tx) (err error) { n, err = job.fn(tx, job.age, p.Batch); return })
			if err != nil {
				return msgs, evs, err
			}
			*job.total += n
			p.mu.Lock()
			*job.count += n
			p.mu.Unlock()
			if n < int64(p.Batch) {
				break
			}
			if err := pauseFor(ctx, p.Pause); err != nil {
				return msgs, evs, err
			}
		}
	}
	return msgs, evs, nil
}

func pauseFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
