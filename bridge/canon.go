package bridge

import (
	"context"
	"fmt"

	"github.com/outpost-sms/outpost/store"
)

// CanonicalStored rewrites the opt-outs, bans and subscriptions stored
// in another spelling than the canonical one (Canonical: recorded before
// addresses were canonical, such as tel:00254…, tel:0712… before [sms]
// country_code was set, mailto:Bad@Example.org) so that they match what
// they meant to. Run at start, before anything is sent; it returns how
// many rows changed. Each address rewritten is audited (op readdress).
func (h *Router) CanonicalStored(ctx context.Context) (int64, error) {
	var n int64
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		n = 0
		addrs, err := tx.PeopleAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			to := Canonical(a)
			k, err := tx.Readdress(a, to)
			if err != nil {
				return err
			}
			if k > 0 {
				if err := h.audit(tx, store.AuditEntry{Who: "outpost run", Channel: "config", Op: "readdress", Target: a,
					Detail: fmt.Sprintf("opt-outs, bans and subscriptions of %s are now of %s (one form of every address)", a, to)}); err != nil {
					return err
				}
			}
			n += k
		}
		return nil
	})
	if err == nil && n > 0 {
		h.Log.Info("opt-outs, bans and subscriptions stored in another spelling rewritten in canonical form", "rows", n)
	}
	return n, err
}
