package bridge

import (
	"errors"

	"github.com/outpost-sms/outpost/store"
)

// Expand is what a send request's "to" comes to: every address parsed,
// "group:<name>" entries expanded to their members, repeats dropped; the
// error names what is wrong (an unknown or empty group, a bad address).
// A connector that takes addresses of its own (the email connector's
// group-<name>@domain) checks them with it before it takes a request.
func (h *Router) Expand(to []string) ([]Address, error) {
	addrs, _, err := h.recipients(to, nil)
	return addrs, err
}

// SubmitIn stores a send request inside tx, as Submit does in a
// transaction of its own; note is added to the history's "accepted"
// line. A connector uses it for a message it makes itself in reaction to
// another (the email connector's notice of a failed SMS): both commit
// together, or neither does. A request whose id is stored already is
// not stored again (nil: the same request; ErrConflict: another one).
func (h *Router) SubmitIn(tx *store.Tx, req SendRequest, note string) (*store.Message, error) {
	req.note = note
	m, write, err := h.prepare(req)
	if err != nil {
		return nil, err
	}
	if err := write(tx); err != nil && !errors.Is(err, store.ErrDuplicate) {
		return nil, err
	}
	return m, nil
}
