package store

import (
	"fmt"
	"time"
)

// ModemSample is a modem's radio at one moment.
type ModemSample struct {
	Modem        string    `json:"-"`
	At           time.Time `json:"at"`
	State        string    `json:"state"`
	Signal       int       `json:"signal"` // +CSQ rssi 0-31, 99 unknown
	Registration string    `json:"registration,omitempty"`
	Operator     string    `json:"operator,omitempty"`
	Network      string    `json:"network,omitempty"`
}

// AddModemSamples stores samples (a batch: one transaction for many).
func (tx *Tx) AddModemSamples(ss []ModemSample) error {
	st, err := tx.stmt(`INSERT INTO modem_samples (modem, at, state, signal, registration, operator, network) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if _, err := st.ExecContext(tx.ctx, s.Modem, ms(s.At), s.State, s.Signal, s.Registration, s.Operator, s.Network); err != nil {
			return fmt.Errorf("modem sample: %w", err)
		}
	}
	return nil
}

// ModemSamples lists modem's samples since then, oldest first.
func (tx *Tx) ModemSamples(modem string, since time.Time) ([]ModemSample, error) {
	st, err := tx.stmt(`SELECT at, state, signal, registration, operator, network FROM modem_samples WHERE modem = ? AND at >= ? ORDER BY at`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, modem, ms(since))
	if err != nil {
		return nil, fmt.Errorf("modem samples: %w", err)
	}
	defer rows.Close()
	var out []ModemSample
	for rows.Next() {
		s := ModemSample{Modem: modem}
		var at int64
		if err := rows.Scan(&at, &s.State, &s.Signal, &s.Registration, &s.Operator, &s.Network); err != nil {
			return nil, err
		}
		s.At = fromMS(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PruneModemSamples deletes the samples older than before.
func (tx *Tx) PruneModemSamples(before time.Time) (int64, error) {
	st, err := tx.stmt(`DELETE FROM modem_samples WHERE at < ?`)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(tx.ctx, ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune modem samples: %w", err)
	}
	return res.RowsAffected()
}
