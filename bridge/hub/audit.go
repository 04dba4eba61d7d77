package hub

import (
	"encoding/json"

	"github.com/outpost-sms/outpost/store"
)

// auditToHub queues a copy of an audit entry for the hub (<base>audit),
// inside the transaction that appends it: through the durable hub queue,
// without a delivery, so the central side gets every action even after
// the box was offline.
func (c *Connector) auditToHub(tx *store.Tx, e store.AuditEntry) error {
	b, _ := json.Marshal(e)
	return c.QueueOwn(tx, AuditTopic(c.opts.Base), b, false)
}

// AuditTopic is the hub topic of the audit log's copies under base (the
// retention pruner keeps the entries whose copy still waits there).
func AuditTopic(base string) string { return base + "audit" }
