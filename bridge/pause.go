package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/outpost-sms/outpost/store"
)

// An operator pauses a modem or a connector (outpost pause NAME) to stop
// what it sends without losing anything: a paused modem is given no
// part (its messages go through the other modems, or wait queued, their
// attempts not counted) but still receives; a paused connector's
// deliveries stay queued and go on, in order, on resume. Pauses are
// stored, so a restart does not undo one.

// ErrUnknownName is the error of a pause or resume naming neither a
// configured modem nor a connector.
var ErrUnknownName = errors.New("no such modem or connector")

// PauseAnswer is the answer of Pause and Resume.
type PauseAnswer struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // "modem" or "connector"
	Paused bool   `json:"paused"`
}

// LoadPaused reads the stored pauses, once: the daemon calls it before
// it serves or sends anything; Run calls it too (for a router that was
// not given them).
func (h *Router) LoadPaused(ctx context.Context) error {
	h.mu.Lock()
	loaded := h.pausedLoaded
	h.mu.Unlock()
	if loaded {
		return nil
	}
	var ps []store.Pause
	if err := h.Store.View(ctx, func(tx *store.Tx) (err error) { ps, err = tx.Paused(); return err }); err != nil {
		return fmt.Errorf("paused modems and connectors: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pausedLoaded {
		return nil
	}
	h.pausedLoaded = true
	for _, p := range ps {
		h.paused[p.Name] = true
		h.Log.Warn("paused (outpost resume "+p.Name+" to go on)", "name", p.Name, "kind", p.Kind, "since", p.Since, "by", p.By)
	}
	return nil
}

// Paused reports whether an operator paused the modem or connector name.
func (h *Router) Paused(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused[name]
}

// PausedNames are the paused modems and connectors, sorted (empty, not
// nil, when none: status says [] then).
func (h *Router) PausedNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{}, slices.Sorted(maps.Keys(h.paused))...)
}

// kindOf says whether name is a modem or a connector ("" neither): a
// modem's id first, as the more specific.
func (h *Router) kindOf(name string) string {
	if slices.Contains(h.ModemIDs, name) {
		return "modem"
	}
	if h.connector(name) != nil {
		return "connector"
	}
	return ""
}

// Pause pauses the modem or connector name, for the caller of ctx
// (audited); pausing one already paused changes nothing.
func (h *Router) Pause(ctx context.Context, name string) (PauseAnswer, error) {
	kind := h.kindOf(name)
	if kind == "" {
		return PauseAnswer{}, h.unknown(name)
	}
	who := callerOf(ctx, "api")
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		changed, err := tx.SetPaused(name, kind, who)
		if err != nil || !changed {
			return err
		}
		tx.AfterCommit(func() {
			h.mu.Lock()
			h.paused[name] = true
			h.mu.Unlock()
		})
		return h.auditCtx(ctx, tx, "pause", name, kind)
	})
	if err != nil {
		return PauseAnswer{}, err
	}
	h.Log.Warn("paused: it sends nothing until resumed", "name", name, "kind", kind, "by", who)
	return PauseAnswer{Name: name, Kind: kind, Paused: true}, nil
}

// Resume ends the pause of name: what waited for it goes now. A name
// paused before it left the config can be resumed, to clear it.
func (h *Router) Resume(ctx context.Context, name string) (PauseAnswer, error) {
	kind := h.kindOf(name)
	if kind == "" && !h.Paused(name) {
		return PauseAnswer{}, h.unknown(name)
	}
	who := callerOf(ctx, "api")
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		changed, err := tx.ClearPaused(name)
		if err != nil || !changed {
			return err
		}
		if kind == "modem" {
			if tel := h.ConnectorFor(SchemeTel); tel != nil {
				// Those that only this modem will do wait with a due time
				// of their own (the modem looked down): due now.
				if _, err := tx.HurryModem(tel.Name(), name); err != nil {
					return err
				}
			}
		}
		tx.AfterCommit(func() {
			h.mu.Lock()
			delete(h.paused, name)
			h.mu.Unlock()
			h.wakeAfterResume(name, kind)
		})
		return h.auditCtx(ctx, tx, "resume", name, kind)
	})
	if err != nil {
		return PauseAnswer{}, err
	}
	h.Log.Info("resumed", "name", name, "kind", kind, "by", who)
	return PauseAnswer{Name: name, Kind: kind, Paused: false}, nil
}

// wakeAfterResume makes whoever waited for name look again: its
// dispatcher (a modem's is the SMS connector's), or a connector that
// runs its own queue.
func (h *Router) wakeAfterResume(name, kind string) {
	c := h.connector(name)
	if kind == "modem" {
		c = h.ConnectorFor(SchemeTel)
	}
	if c == nil {
		return
	}
	h.Wake(c.Name())
	if w, ok := c.(interface{ Wake() }); ok {
		w.Wake()
	}
}

func (h *Router) unknown(name string) error {
	h.mu.Lock()
	names := slices.Sorted(maps.Keys(h.connectors))
	h.mu.Unlock()
	return fmt.Errorf("%w %q: give a modem (%s) or a connector (%s)", ErrUnknownName, name, strings.Join(h.ModemIDs, ", "), strings.Join(names, ", "))
}
