package bridge

import (
	"context"

	"github.com/outpost-sms/outpost/store"
)

// Retry puts a message's failed or expired destinations back in the queue
// with their attempts reset; by (the CLI, an API client) goes into the
// history. store.ErrNotFound for an unknown id, store.ErrWrongState when
// nothing is failed or expired.
func (h *Hub) Retry(ctx context.Context, id, by string) ([]store.Delivery, error) {
	var ds []store.Delivery
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if ds, err = tx.RetryDeliveries(id, by); err != nil {
			return err
		}
		for _, d := range ds {
			if err := h.notify(tx, d, "retried by "+by); err != nil {
				return err
			}
			tx.AfterCommit(func() { h.Wake(d.Connector) })
		}
		return nil
	})
	if err == nil {
		h.Log.Info("message retried", "msg_id", id, "by", by, "destinations", len(ds))
	}
	return ds, err
}

// Cancel cancels a message's queued or scheduled destinations (final: the
// dispatcher and the expiry loop leave them alone); by goes into the
// history. A destination being sent right now refuses the cancel
// (store.ErrWrongState, saying so): its parts may already be with the
// network. store.ErrNotFound for an unknown id.
func (h *Hub) Cancel(ctx context.Context, id, by string) ([]store.Delivery, error) {
	var ds []store.Delivery
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if ds, err = tx.CancelDeliveries(id, by); err != nil {
			return err
		}
		for _, d := range ds {
			if err := h.notify(tx, d, "cancelled by "+by); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		h.Log.Info("message cancelled", "msg_id", id, "by", by, "destinations", len(ds))
	}
	return ds, err
}
