package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkOpenRebase is what the checks for jumps of the clock cost at
// start: a database with 100,000 messages, deliveries and hub messages
// and 300,000 events, all sane (nothing to move) or all recorded in 1970
// (every time moved).
func BenchmarkOpenRebase(b *testing.B) {
	for _, insane := range []bool{false, true} {
		name := "sane"
		if insane {
			name = "1970"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "outpost.db")
			s, err := Open(ctx, path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			at := time.Now().UnixMilli() - 200_000
			if insane {
				at = 3_600_000
			}
			for _, q := range []string{
				`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100000)
				 INSERT INTO messages (id, direction, peer, created_at) SELECT 'm' || i, 'out', '+1', ?1 + i FROM n`,
				`INSERT INTO deliveries (message_id, connector, recipient, state, next_at, updated_at) SELECT id, 'sms', '+1', 'queued', 0, created_at FROM messages`,
				`INSERT INTO events (message_id, at, state) SELECT id, created_at, 'queued' FROM messages`,
				`INSERT INTO events (message_id, at, state) SELECT id, created_at, 'sending' FROM messages`,
				`INSERT INTO events (message_id, at, state) SELECT id, created_at, 'queued' FROM messages`,
				`INSERT INTO hub_queue (topic, payload, qos, retain, created_at) SELECT 't', zeroblob(200), 1, 0, created_at FROM messages`,
			} {
				if _, err := s.DB().Exec(q, at); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if insane { // back to 1970 for this round
					db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range timeCols {
						if _, err := db.Exec(fmt.Sprintf(`UPDATE %s SET %s = %s %% 100000000 + 3600000 WHERE %s != 0`, c.table, c.col, c.col, c.col)); err != nil {
							b.Fatal(err)
						}
					}
					db.Close()
				}
				b.StartTimer()
				s, err := Open(ctx, path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
		})
	}
}
