package bridge

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// NewQuietHandler returns a handler that passes a log record on to next
// unless one with the same message passed less than every ago (see
// quietHandler).
func NewQuietHandler(next slog.Handler, every time.Duration) slog.Handler {
	return newQuiet(next, every)
}

// quietHandler passes a log record on unless a record with the same
// message passed less than every ago; the next one that passes says how
// many were held back ("suppressed"). mochi logs some warnings once per
// message (a subscriber that stops reading: "client store quota reached"
// for every message it misses), which would fill a Pi's SD card in
// minutes.
type quietHandler struct {
	next  slog.Handler
	every time.Duration
	st    *quietState
	now   func() time.Time // elapsed time; time.Now's monotonic reading
}

type quietState struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func newQuiet(next slog.Handler, every time.Duration) *quietHandler {
	return &quietHandler{next: next, every: every, st: &quietState{last: map[string]time.Time{}, held: map[string]int{}}, now: time.Now}
}

// maxQuietKeys bounds the messages remembered (mochi's are a few dozen).
const maxQuietKeys = 1024

func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	st.mu.Lock()
	now := h.now()
	if t, ok := st.last[r.Message]; ok && now.Sub(t) < h.every {
		st.held[r.Message]++
		st.mu.Unlock()
		return nil
	}
	if len(st.last) >= maxQuietKeys {
		clear(st.last)
		clear(st.held)
	}
	st.last[r.Message] = now
	n := st.held[r.Message]
	delete(st.held, r.Message)
	st.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}

func (h *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &quietHandler{next: h.next.WithAttrs(as), every: h.every, st: h.st, now: h.now}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{next: h.next.WithGroup(name), every: h.every, st: h.st, now: h.now}
}
