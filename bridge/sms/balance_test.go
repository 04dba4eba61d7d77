package sms

import (
	"regexp"
	"testing"
)

func TestParseBalance(t *testing.T) {
	re := regexp.MustCompile(DefaultBalanceRegex)
	for _, c := range []struct {
		text     string
		amount   float64
		currency string
	}{
		{"Your balance is 123.45 KES", 123.45, "KES"},
		{"Bal: KES 50.00", 50, "KES"},
		{"Credit: 12,50 EUR", 12.5, "EUR"},
		{"Your balance is KES 100.00. Valid until 31/12/2026.", 100, "KES"},
		{"Your account balance is KES 1,234.50 and bonus 5.00", 1234.5, "KES"},
		{"Solde: 1.234,56 FCFA", 1234.56, "FCFA"},
		{"Dear customer, your airtime balance is Ksh 7.30. Dial *544# for bundles", 7.3, "Ksh"},
		{"Balance:KES50.00", 50, "KES"},
		{"Saldo 5 USD", 5, "USD"},
		{"BAL: -3.20", -3.2, ""},
		{"Guthaben: 15,00 €", 15, "€"},
	} {
		a, cur, ok := ParseBalance(re, c.text)
		if !ok || a != c.amount || cur != c.currency {
			t.Errorf("%q: %v %q %v; want %v %q", c.text, a, cur, ok, c.amount, c.currency)
		}
	}
	for _, text := range []string{"Service unavailable", "Dial *100# to check", "global 55"} {
		if a, _, ok := ParseBalance(re, text); ok {
			t.Errorf("%q: read %v", text, a)
		}
	}
	// A regex of one's own: the first group, or one named amount.
	if a, _, ok := ParseBalance(regexp.MustCompile(`(\d+) units`), "You have 42 units left"); !ok || a != 42 {
		t.Errorf("first group: %v %v", a, ok)
	}
	if a, cur, ok := ParseBalance(regexp.MustCompile(`(left) (?P<amount>\d+) (?P<currency>\w+)`), "left 9 SMS"); !ok || a != 9 || cur != "SMS" {
		t.Errorf("named: %v %q %v", a, cur, ok)
	}
	// A loose regex of one's own may capture a word ParseFloat reads:
	// NaN or Inf is no amount (NaN would break the status's JSON and
	// never be low).
	for _, text := range []string{"Balance: NaN.", "Balance: Inf.", "Balance: -infinity."} {
		if a, _, ok := ParseBalance(regexp.MustCompile(`Balance: (\S+?)\.`), text); ok {
			t.Errorf("%q: read %v", text, a)
		}
	}
}
