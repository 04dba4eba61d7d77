package store

import (
	"context"
	"errors"
	"testing"
)

func TestModemBalance(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	err := s.View(ctx, func(tx *Tx) error { _, err := tx.ModemBalance("m1"); return err })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("no balance yet: %v", err)
	}
	amount := 12.5
	for _, b := range []ModemBalance{
		{Modem: "m1", Amount: &amount, Currency: "KES", Text: "Bal: KES 12.50", Low: true},
		{Modem: "m2", Text: "Service unavailable"},
	} {
		if err := s.Update(ctx, func(tx *Tx) error { return tx.SetModemBalance(b) }); err != nil {
			t.Fatal(err)
		}
	}
	var m1, m2 ModemBalance
	if err := s.View(ctx, func(tx *Tx) (err error) {
		if m1, err = tx.ModemBalance("m1"); err != nil {
			return err
		}
		m2, err = tx.ModemBalance("m2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if m1.Amount == nil || *m1.Amount != 12.5 || m1.Currency != "KES" || !m1.Low || m1.At.IsZero() || m1.Text != "Bal: KES 12.50" {
		t.Fatalf("m1 %+v", m1)
	}
	if m2.Amount != nil || m2.Low || m2.Text != "Service unavailable" {
		t.Fatalf("m2 %+v", m2)
	}
}
