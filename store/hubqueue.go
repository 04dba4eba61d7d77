package store

import (
	"strings"
	"time"
)

// HubMessage is one MQTT message waiting for the hub to acknowledge it.
type HubMessage struct {
	ID        int64
	Topic     string
	Payload   []byte
	QoS       byte
	Retain    bool
	CreatedAt time.Time
}

// EnqueueHub adds m to the hub queue, filling its ID.
func (tx *Tx) EnqueueHub(m *HubMessage) error {
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	res, err := tx.exec(`INSERT INTO hub_queue (topic, payload, qos, retain, created_at) VALUES (?, ?, ?, ?, ?)`,
		m.Topic, m.Payload, m.QoS, m.Retain, ms(tx.now))
	if err != nil {
		return err
	}
	m.ID, err = res.LastInsertId()
	m.CreatedAt = tx.now
	return err
}

// HubBatch returns up to limit queued messages, oldest first.
func (tx *Tx) HubBatch(limit int) ([]HubMessage, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT id, topic, payload, qos, retain, created_at FROM hub_queue ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HubMessage
	for rows.Next() {
		var m HubMessage
		var created int64
		if err := rows.Scan(&m.ID, &m.Topic, &m.Payload, &m.QoS, &m.Retain, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = fromMS(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteHub removes messages the hub acknowledged.
func (tx *Tx) DeleteHub(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := tx.exec(`DELETE FROM hub_queue WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	return err
}

// HubQueueStats counts the queued messages and their payload bytes.
func (tx *Tx) HubQueueStats() (count, bytes int64, err error) {
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM hub_queue`).Scan(&count, &bytes)
	return count, bytes, err
}
