package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// User is a web console user (outpost user add): Hash is the bcrypt
// hash of the password, never shown.
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created"`
	Hash      string    `json:"-"`
}

// Session is a web console login: Hash is the SHA-256 of its cookie,
// CSRF the token its pages send with every change.
type Session struct {
	Hash      string
	User      string
	Role      string
	CSRF      string
	CreatedAt time.Time
	LastUsed  time.Time
}

// AddUser stores u (created now); ErrDuplicate when its name is taken.
func (tx *Tx) AddUser(u User) error {
	res, err := tx.exec(`INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		u.Name, u.Role, u.Hash, ms(tx.now))
	if err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("a user named %q exists already (outpost user passwd %s to change the password): %w", u.Name, u.Name, ErrDuplicate)
	}
	return nil
}

// SetUserPassword replaces name's password hash and ends its sessions
// (a changed password logs everyone out); ErrNotFound when no such user.
func (tx *Tx) SetUserPassword(name, hash string) error {
	res, err := tx.exec(`UPDATE users SET hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("no user named %q: %w", name, ErrNotFound)
	}
	_, err = tx.exec(`DELETE FROM sessions WHERE user = ?`, name)
	return err
}

// RemoveUser deletes the user named name with its sessions; ErrNotFound
// when there is none.
func (tx *Tx) RemoveUser(name string) error {
	if _, err := tx.exec(`DELETE FROM sessions WHERE user = ?`, name); err != nil {
		return fmt.Errorf("user: %w", err)
	}
	res, err := tx.exec(`DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("no user named %q: %w", name, ErrNotFound)
	}
	return nil
}

// Users lists the users by name.
func (tx *Tx) Users() ([]User, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT name, role, hash, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		var u User
		var c int64
		if err := rows.Scan(&u.Name, &u.Role, &u.Hash, &c); err != nil {
			return nil, err
		}
		u.CreatedAt = fromMS(c)
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserByName is the user called name; ErrNotFound when none.
func (tx *Tx) UserByName(name string) (User, error) {
	u := User{Name: name}
	var c int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT role, hash, created_at FROM users WHERE name = ?`, name).Scan(&u.Role, &u.Hash, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("user: %w", err)
	}
	u.CreatedAt = fromMS(c)
	return u, nil
}

// AddSession stores a new login session (created and used now).
func (tx *Tx) AddSession(s Session) error {
	_, err := tx.exec(`INSERT INTO sessions (hash, user, csrf, created_at, last_used) VALUES (?, ?, ?, ?, ?)`,
		s.Hash, s.User, s.CSRF, ms(tx.now), ms(tx.now))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	return nil
}

// SessionByHash is the session whose cookie hashes to hash, with its
// user's role now; ErrNotFound when none.
func (tx *Tx) SessionByHash(hash string) (Session, error) {
	s := Session{Hash: hash}
	var c, l int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT s.user, u.role, s.csrf, s.created_at, s.last_used FROM sessions s JOIN users u ON u.name = s.user WHERE s.hash = ?`, hash).
		Scan(&s.User, &s.Role, &s.CSRF, &c, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	s.CreatedAt, s.LastUsed = fromMS(c), fromMS(l)
	return s, nil
}

// TouchSession records that the session hash was used now.
func (tx *Tx) TouchSession(hash string) error {
	_, err := tx.exec(`UPDATE sessions SET last_used = ? WHERE hash = ?`, ms(tx.now), hash)
	return err
}

// RemoveSession ends the session hash (logout, or found idle).
func (tx *Tx) RemoveSession(hash string) error {
	_, err := tx.exec(`DELETE FROM sessions WHERE hash = ?`, hash)
	return err
}

// RemoveIdleSessions ends every session not used since before.
func (tx *Tx) RemoveIdleSessions(before time.Time) (int64, error) {
	res, err := tx.exec(`DELETE FROM sessions WHERE last_used < ?`, ms(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// TrimSessions ends user's least recently used sessions beyond the keep
// most recent and returns their hashes.
func (tx *Tx) TrimSessions(user string, keep int) ([]string, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT hash FROM sessions WHERE user = ? ORDER BY last_used DESC, rowid DESC LIMIT -1 OFFSET ?`, user, keep)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	var hashes []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sessions: %w", err)
		}
		hashes = append(hashes, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	for _, h := range hashes {
		if err := tx.RemoveSession(h); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}
