package store

import (
	"strings"
)

// HubDeliveryFunc is told, inside the transaction that does it, that the
// hub queue's copy of a delivery (HubMessage.DeliveryID) left the queue
// without reaching the hub, or came back to it: state is what the
// delivery becomes (Failed, Expired; Queued for a set-aside copy put
// back) and detail says why. See Store.OnHubDelivery.
type HubDeliveryFunc func(tx *Tx, deliveryID int64, state, detail string) error

// OnHubDelivery registers f, the hub connector's, to run in the
// transaction of every change of the hub queue that ends a delivery's copy
// or brings it back: a drop for a full queue (EnqueueHubLimited), an
// expiry (ExpireHub), a set-aside (SetAsideHub), a requeue
// (RequeueHubSetAside). (The hub's PUBACK is the uplink's to record; a
// cancel or an expiry of the delivery removes its copy, see
// RemoveHubCopies.) Call it before the store is used.
func (s *Store) OnHubDelivery(f HubDeliveryFunc) { s.hubDelivery = f }

// hubDeliveryChanged calls the OnHubDelivery function, if any.
func (tx *Tx) hubDeliveryChanged(deliveryID int64, state, detail string) error {
	if tx.s == nil || tx.s.hubDelivery == nil || deliveryID == 0 {
		return nil
	}
	return tx.s.hubDelivery(tx, deliveryID, state, detail)
}

// LinkHubDelivery makes the queued hub message queueID the copy of
// delivery deliveryID (HubMessage.DeliveryID).
func (tx *Tx) LinkHubDelivery(queueID, deliveryID int64) error {
	_, err := tx.exec(`UPDATE hub_queue SET delivery_id = ? WHERE id = ?`, deliveryID, queueID)
	return err
}

// RemoveHubCopies deletes from the hub queue, and from the set-aside
// ones, the copies of these deliveries (cancelled or expired: they must
// not go to the hub now, not even by a requeue). A copy already handed to
// the hub may still arrive there.
func (tx *Tx) RemoveHubCopies(deliveryIDs []int64) error {
	if len(deliveryIDs) == 0 {
		return nil
	}
	if _, err := tx.exec(`DELETE FROM hub_queue WHERE delivery_id IN (?`+strings.Repeat(",?", len(deliveryIDs)-1)+`)`, anyIDs(deliveryIDs)...); err != nil {
		return err
	}
	return tx.RemoveSetAsideCopies(deliveryIDs)
}

// RemoveSetAsideCopies deletes the set-aside copies of these deliveries:
// a delivery queued again (a retry) has a new copy, and a requeue of an
// old one would send it twice.
func (tx *Tx) RemoveSetAsideCopies(deliveryIDs []int64) error {
	if len(deliveryIDs) == 0 {
		return nil
	}
	_, err := tx.exec(`DELETE FROM hub_set_aside WHERE delivery_id IN (?`+strings.Repeat(",?", len(deliveryIDs)-1)+`)`, anyIDs(deliveryIDs)...)
	return err
}

func anyIDs(v []int64) []any {
	args := make([]any, len(v))
	for i, id := range v {
		args[i] = id
	}
	return args
}

// HubCopies counts the copies of a delivery queued for the hub.
func (tx *Tx) HubCopies(deliveryID int64) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT COUNT(*) FROM hub_queue WHERE delivery_id = ?`, deliveryID).Scan(&n)
	return n, err
}
