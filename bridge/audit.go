package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// audit appends e to the audit log inside tx, the transaction of the
// change it records (nothing is audited that did not happen, nothing
// happens unaudited), and runs the OnAuditTx functions (the hub's copy).
func (h *Router) audit(tx *store.Tx, e store.AuditEntry) error {
	if e.Who == "" {
		e.Who = e.Channel
	}
	if err := tx.AppendAudit(&e); err != nil {
		return err
	}
	h.mu.Lock()
	fs := append([]func(*store.Tx, store.AuditEntry) error{}, h.onAuditTx...)
	h.mu.Unlock()
	for _, f := range fs {
		if err := f(tx, e); err != nil {
			return err
		}
	}
	return nil
}

// OnAuditTx registers f to run inside the transaction of every audit
// entry: what f writes commits with it, or neither does.
func (h *Router) OnAuditTx(f func(*store.Tx, store.AuditEntry) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onAuditTx = append(h.onAuditTx, f)
}

// AuditQuery selects audit entries: since (zero: all), who (a part of
// the name, any case; "": everyone).
type AuditQuery struct {
	Since time.Time
	Who   string
	Limit int
}

// ParseSince reads a --since or since= of every front end (audit,
// messages, statistics): days ("7d") or a duration ("36h") back from
// now, or an RFC 3339 time, which must not be after now (it would find
// nothing, silently). Empty is the zero time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= 100000 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: since %q: want days (7d), a duration back from now (36h) or an RFC 3339 time (2026-01-02T15:04:05Z)", ErrInvalid, s)
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("%w: since %q is after now (%s)", ErrInvalid, s, now.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// AuditLog lists the audit log, oldest first.
func (h *Router) AuditLog(ctx context.Context, q AuditQuery) (out []store.AuditEntry, err error) {
	err = h.Store.View(ctx, func(tx *store.Tx) (err error) {
		out, err = tx.AuditLog(q.Since, q.Who, q.Limit)
		return err
	})
	return out, err
}

// sendWho is who asked for a send: the request's By, else its sender's
// address, else its channel.
func sendWho(req SendRequest) string {
	switch {
	case req.By != "":
		return req.By
	case req.From != "":
		return req.From
	}
	return req.Source
}

// auditSend records a stored send with its recipients (and those skipped).
func (h *Router) auditSend(tx *store.Tx, req SendRequest, m *store.Message, skipped []string) error {
	detail := "to " + m.Peer
	if len(detail) > 500 {
		detail = detail[:500] + "…"
	}
	if len(skipped) > 0 {
		detail += fmt.Sprintf("; %d skipped", len(skipped))
	}
	if req.note != "" {
		detail += " (" + req.note + ")"
	}
	return h.audit(tx, store.AuditEntry{Who: sendWho(req), Channel: req.Source, Op: "send", Target: m.ID, Detail: detail})
}

// ErrBanned marks a send refused because a recipient is banned; it is
// also ErrInvalid.
var ErrBanned = errors.New("banned")

type bannedError struct{ msg string }

func (e bannedError) Error() string { return ErrInvalid.Error() + ": " + e.msg }
func (e bannedError) Is(target error) bool {
	return target == ErrInvalid || target == ErrBanned
}

func banNote(b store.Ban) string {
	s := "banned by " + b.By + " at " + b.At.UTC().Format(time.RFC3339)
	if b.Reason != "" {
		s += " (" + b.Reason + ")"
	}
	return s
}

// applyBans is the ban check of every send, inside the transaction that
// stores it: a banned address named directly refuses the request; one a
// group or a topic brought is skipped (the history says so); a request
// from a banned sender is refused.
func (h *Router) applyBans(tx *store.Tx, req SendRequest, direct map[Address]bool, targets []target) (kept []target, skipped []string, err error) {
	// A banned sender (a mail from a banned address to <number>@…) is
	// not relayed either.
	if strings.HasPrefix(req.From, SchemeTel+":") || strings.HasPrefix(req.From, SchemeMailto+":") {
		b, banned, err := tx.GetBan(Canonical(req.From))
		if err != nil {
			return nil, nil, err
		}
		if banned {
			return nil, nil, bannedError{fmt.Sprintf("the sender %s is %s: nothing it asks is sent", req.From, banNote(b))}
		}
	}
	for _, t := range targets {
		if t.addr.Scheme != SchemeTel && t.addr.Scheme != SchemeMailto {
			kept = append(kept, t)
			continue
		}
		b, banned, err := tx.GetBan(t.addr.String())
		if err != nil {
			return nil, nil, err
		}
		if !banned {
			kept = append(kept, t)
			continue
		}
		if direct[t.addr] {
			return nil, nil, bannedError{fmt.Sprintf("%s is %s: nothing is sent to it (outpost unban to lift it)", t.addr.Value, banNote(b))}
		}
		skipped = append(skipped, fmt.Sprintf("%s skipped: %s", t.addr.Value, banNote(b)))
	}
	return kept, skipped, nil
}

// bannedInbound marks an inbound message from a banned address: it is
// stored, tagged "banned", its history says so, and it is not routed or
// answered. ok is false when the sender is not banned.
func (h *Router) bannedInbound(tx *store.Tx, m *store.Message) (b store.Ban, ok bool, err error) {
	if m.FromAddr == "" {
		return b, false, nil
	}
	return tx.GetBan(Canonical(m.FromAddr))
}

type originKey struct{}

type callerKey struct{}

// WithCaller is WithOrigin with who asks too (the CLI's user, an MQTT
// client), for the operations that take no "by" of their own (people,
// contacts and groups).
func WithCaller(ctx context.Context, channel, who string) context.Context {
	return context.WithValue(WithOrigin(ctx, channel), callerKey{}, who)
}

// callerOf is who WithCaller gave ctx, else its channel, else def.
func callerOf(ctx context.Context, def string) string {
	if w, ok := ctx.Value(callerKey{}).(string); ok && w != "" {
		return w
	}
	return origin(ctx, def)
}

// auditCtx records op on target by the caller of ctx.
func (h *Router) auditCtx(ctx context.Context, tx *store.Tx, op, target, detail string) error {
	return h.audit(tx, store.AuditEntry{Who: callerOf(ctx, "api"), Channel: origin(ctx, "api"), Op: op, Target: target, Detail: detail})
}

// Audit appends e to the audit log inside tx, the transaction of the
// change it records, for an operation outside bridge (the hub's requeue).
func (h *Router) Audit(tx *store.Tx, e store.AuditEntry) error { return h.audit(tx, e) }

// WithOrigin tells the operations run with ctx the channel (cli, http,
// mqtt…) their request came in on, for the audit log.
func WithOrigin(ctx context.Context, channel string) context.Context {
	return context.WithValue(ctx, originKey{}, channel)
}

// origin is the channel WithOrigin gave ctx, or def.
func origin(ctx context.Context, def string) string {
	if c, ok := ctx.Value(originKey{}).(string); ok && c != "" {
		return c
	}
	return def
}

// auditManaged records a retry or a cancel with the destinations it changed.
func (h *Router) auditManaged(ctx context.Context, tx *store.Tx, op, id, by string, r store.Managed) error {
	return h.audit(tx, store.AuditEntry{Who: by, Channel: origin(ctx, "api"), Op: op, Target: id,
		Detail: fmt.Sprintf("%d destinations", len(r.Changed))})
}

// AuditConfig records a start of the daemon with a config unlike the
// last start's (or the first start): the config is a state of the box
// like any other, and the central side sees when it changed. file is the
// config file ("": the built-in defaults), digest a hash of the config
// in effect. It reports whether it recorded one.
func (h *Router) AuditConfig(ctx context.Context, file, digest string) (bool, error) {
	if file == "" {
		file = "the built-in defaults"
	}
	recorded := false
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		last, ok, err := tx.LastAudit("config")
		if err != nil {
			return err
		}
		was, _, _ := strings.Cut(last.Detail, " ")
		detail := digest + " (the first start)"
		switch {
		case ok && was == digest:
			return nil
		case ok:
			detail = digest + " (changed since the last start: was " + was + ")"
		}
		recorded = true
		return h.audit(tx, store.AuditEntry{Who: "outpost run", Channel: "config", Op: "config", Target: file, Detail: detail})
	})
	return recorded, err
}
