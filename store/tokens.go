package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// APIToken is a token of the HTTP API on TCP, without its secret: only
// its SHA-256 (Hash, hex) is stored.
type APIToken struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Hash      string    `json:"-"`
}

// AddToken stores t (created now); ErrConflict when its name is taken.
func (tx *Tx) AddToken(t APIToken) error {
	res, err := tx.exec(`INSERT INTO api_tokens (name, hash, role, created_at, expires_at, last_used) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`,
		t.Name, t.Hash, t.Role, ms(tx.now), ms(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("a token named %q exists already (outpost token rm %s first): %w", t.Name, t.Name, ErrDuplicate)
	}
	return nil
}

// RemoveToken deletes the token named name; ErrNotFound when there is none.
func (tx *Tx) RemoveToken(name string) error {
	res, err := tx.exec(`DELETE FROM api_tokens WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("no token named %q: %w", name, ErrNotFound)
	}
	return nil
}

// Tokens lists the tokens by name.
func (tx *Tx) Tokens() ([]APIToken, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT name, hash, role, created_at, expires_at, last_used FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		var t APIToken
		var c, e, l int64
		if err := rows.Scan(&t.Name, &t.Hash, &t.Role, &c, &e, &l); err != nil {
			return nil, err
		}
		t.CreatedAt, t.ExpiresAt, t.LastUsed = fromMS(c), fromMS(e), fromMS(l)
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenByHash is the token whose SHA-256 is hash; ErrNotFound when none.
func (tx *Tx) TokenByHash(hash string) (APIToken, error) {
	t := APIToken{Hash: hash}
	var c, e, l int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT name, role, created_at, expires_at, last_used FROM api_tokens WHERE hash = ?`, hash).
		Scan(&t.Name, &t.Role, &c, &e, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, ErrNotFound
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsed = fromMS(c), fromMS(e), fromMS(l)
	return t, nil
}

// TouchToken records that name was used now.
func (tx *Tx) TouchToken(name string) error {
	_, err := tx.exec(`UPDATE api_tokens SET last_used = ? WHERE name = ?`, ms(tx.now), name)
	return err
}
