package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ModemBalance is the last balance check of a modem's SIM.
type ModemBalance struct {
	Modem    string
	Amount   *float64 // nil: the answer held no amount
	Currency string
	Text     string
	At       time.Time
	// Low: the amount was below the modem's threshold.
	Low bool
}

// SetModemBalance records b as its modem's last balance check, at the
// transaction's time.
func (tx *Tx) SetModemBalance(b ModemBalance) error {
	_, err := tx.exec(`INSERT INTO modem_balance (modem, amount, currency, text, at, low) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (modem) DO UPDATE SET amount = excluded.amount, currency = excluded.currency, text = excluded.text, at = excluded.at, low = excluded.low`,
		b.Modem, b.Amount, b.Currency, b.Text, ms(tx.now), b.Low)
	if err != nil {
		return fmt.Errorf("store balance of %s: %w", b.Modem, err)
	}
	return nil
}

// ModemBalance is modem's last balance check; ErrNotFound when none.
func (tx *Tx) ModemBalance(modem string) (ModemBalance, error) {
	b := ModemBalance{Modem: modem}
	var amount sql.NullFloat64
	var at int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT amount, currency, text, at, low FROM modem_balance WHERE modem = ?`, modem).
		Scan(&amount, &b.Currency, &b.Text, &at, &b.Low)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("balance of %s: %w", modem, ErrNotFound)
	}
	if err != nil {
		return b, err
	}
	if amount.Valid {
		b.Amount = &amount.Float64
	}
	b.At = fromMS(at)
	return b, nil
}
