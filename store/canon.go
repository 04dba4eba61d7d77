package store

import "fmt"

// PeopleAddrs lists the distinct addresses of the opt-outs, the bans and
// the topics' subscriptions.
func (tx *Tx) PeopleAddrs() ([]string, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT addr FROM optouts UNION SELECT addr FROM bans UNION SELECT addr FROM subscriptions`)
	if err != nil {
		return nil, fmt.Errorf("addresses: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Readdress rewrites the address from as to (its canonical form, when it
// was stored in another spelling) in the opt-outs, the bans and the
// subscriptions; where to already has a row, that row is kept and from's
// is dropped. An opt-out rewritten (or merged) counts every delivery
// stored so far as created before it, so each is checked again when it
// goes out: they were checked against the other spelling. It returns how
// many rows changed.
func (tx *Tx) Readdress(from, to string) (int64, error) {
	if from == to {
		return 0, nil
	}
	var n int64
	for _, table := range []string{"optouts", "bans", "subscriptions"} {
		res, err := tx.exec(`UPDATE OR IGNORE `+table+` SET addr = ? WHERE addr = ?`, to, from)
		if err != nil {
			return n, fmt.Errorf("readdress %s: %w", table, err)
		}
		k, _ := res.RowsAffected()
		res, err = tx.exec(`DELETE FROM `+table+` WHERE addr = ?`, from)
		if err != nil {
			return n, fmt.Errorf("readdress %s: %w", table, err)
		}
		d, _ := res.RowsAffected()
		n += k + d
		if table == "optouts" && k+d > 0 {
			if _, err := tx.exec(`UPDATE optouts SET seq = (SELECT COALESCE(MAX(id), 0) FROM deliveries) WHERE addr = ?`, to); err != nil {
				return n, fmt.Errorf("readdress optouts: %w", err)
			}
		}
	}
	return n, nil
}
