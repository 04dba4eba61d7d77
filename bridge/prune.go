package bridge

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// Pruner deletes old finished messages (retention.messages), old history
// (retention.events) and old audit entries (retention.audit) in small
// batches through the group committer, one batch per write with a pause
// between, holding back while other writes wait: never a long write lock.
type Pruner struct {
	Store    *store.Store
	Log      *slog.Logger
	Messages time.Duration // 0: keep them
	Events   time.Duration // 0: keep it
	Audit    time.Duration // 0: keep it
	// AuditHubTopic, with a hub link, is the topic of the audit log's
	// copies for the hub: an entry whose copy still waits is not pruned.
	AuditHubTopic string
	// Batch is the rows per write (default 500); Pause the time between
	// two (default 50 ms); Every the time between two runs (default 1
	// hour; the first runs a minute after start).
	Batch int
	Pause time.Duration
	Every time.Duration
	First time.Duration

	mu        sync.Mutex
	stats     PruneStats
	lastAudit atomic.Int64 // audit entries pruned by the last run
	longest   time.Duration
}

// PruneStats is what the pruner did since start (outpost status).
type PruneStats struct {
	KeepFor    string `json:"messages_kept_for"`
	EventsFor  string `json:"events_kept_for"`
	Pruned     int64  `json:"messages_pruned"`
	EventsGone int64  `json:"events_pruned"`
	AuditFor   string `json:"audit_kept_for"`
	AuditGone  int64  `json:"audit_pruned"`
	// Writes is the pruner's writes since start; LongestWrite the
	// longest time one held the committer (its work and its commit).
	Writes       int64  `json:"writes"`
	LongestWrite string `json:"longest_write,omitempty"`
	Runs         int    `json:"runs"`
	LastRunTook  string `json:"last_run_took,omitempty"`
	LastError    string `json:"last_error,omitempty"`
}

// Stats returns the pruner's counts.
func (p *Pruner) Stats() PruneStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.KeepFor, s.EventsFor, s.AuditFor = keptFor(p.Messages), keptFor(p.Events), keptFor(p.Audit)
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
	if p.Messages <= 0 && p.Events <= 0 && p.Audit <= 0 {
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
		} else if audit := p.lastAudit.Swap(0); msgs+evs+audit > 0 {
			p.Log.Info("retention: pruned", "messages", msgs, "events", evs, "audit", audit)
		}
		t.Reset(p.Every)
	}
}

// Once prunes until nothing is left to prune, batch by batch, and returns
// how many messages and history entries it deleted (the audit entries it
// deleted are counted in Stats).
func (p *Pruner) Once(ctx context.Context) (msgs, evs int64, err error) {
	p.defaults()
	start := time.Now()
	var audit int64
	defer func() {
		p.lastAudit.Store(audit)
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
		{p.Audit, p.pruneAudit(ctx), &audit, &p.stats.AuditGone},
	} {
		for job.age > 0 {
			// Quiet moments: while other writes wait, they go first.
			for i := 0; i < 20 && p.Store.Waiting() > 0; i++ {
				if err := pauseFor(ctx, p.Pause); err != nil {
					return msgs, evs, err
				}
			}
			var n int64
			var start time.Time
			err := p.Store.Update(ctx, func(tx *store.Tx) (err error) {
				start = time.Now()
				n, err = job.fn(tx, job.age, p.Batch)
				return err
			})
			if err != nil {
				return msgs, evs, err
			}
			took := time.Since(start) // its work and its commit
			*job.total += n
			p.mu.Lock()
			*job.count += n
			p.stats.Writes++
			if took > p.longest {
				p.longest = took
				p.stats.LongestWrite = took.Round(100 * time.Microsecond).String()
			}
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

// pruneAudit returns the audit log's pruning for one run: with a hub
// link, the entries from the oldest whose copy waits for the hub are
// kept. It is looked up once, in a read (the hub queue may be long: no
// write waits for it): an entry older than that has no copy waiting,
// and gets none later (copies are queued with their entry).
func (p *Pruner) pruneAudit(ctx context.Context) func(*store.Tx, time.Duration, int) (int64, error) {
	var keepFrom int64
	var err error
	if p.Audit > 0 && p.AuditHubTopic != "" {
		err = p.Store.View(ctx, func(tx *store.Tx) (err error) { keepFrom, err = tx.AuditWaitingFrom(p.AuditHubTopic); return })
	}
	return func(tx *store.Tx, age time.Duration, limit int) (int64, error) {
		if err != nil {
			return 0, err
		}
		return tx.PruneAudit(age, keepFrom, limit)
	}
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
