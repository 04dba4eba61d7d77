package store

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStatsBench is issue 12's statistics benchmark (scripts/bench.sh):
// OUTPOST_STATS_BENCH=N messages spread evenly over 100 days (a third
// inbound from 10,000 numbers on two modems, two thirds sent to them,
// each with a delivery and its sent part, one in ten failed), made with
// INSERT … SELECT from a recursive CTE; then each statistics query over
// the last 7 days, timed, while a send commits every 10 ms (a read takes
// no write lock: the sends' longest wait is reported).
func TestStatsBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("OUTPOST_STATS_BENCH"))
	if n <= 0 {
		t.Skip("set OUTPOST_STATS_BENCH=1000000 (the number of messages) to run")
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "outpost.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	built := time.Now()
	now := time.Now().UnixMilli()
	span := int64(100 * 24 * time.Hour / time.Millisecond)
	start := now - span
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?2)
		 INSERT INTO messages (id, direction, peer, modem, text, parts, channel, from_addr, kind, state, created_at)
		 SELECT printf('m-%09d', i), CASE WHEN i % 3 = 0 THEN 'in' ELSE 'out' END, printf('+1555%07d', i % 10000),
			CASE WHEN i % 3 = 0 THEN printf('sim%d', i % 2) ELSE '' END, 'a message of some length, as people write them', 1,
			CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'http' END, CASE WHEN i % 3 = 0 THEN printf('tel:+1555%07d', i % 10000) ELSE '' END,
			'text', CASE WHEN i % 3 = 0 THEN 'complete' ELSE '' END, ?1 + i * ?3 / ?2 FROM n`,
		`INSERT INTO deliveries (message_id, connector, recipient, state, attempts, updated_at)
		 SELECT id, 'sms', peer, CASE WHEN rowid % 10 = 1 THEN 'failed' ELSE 'delivered' END, 1, created_at + 5000 FROM messages WHERE direction = 'out'`,
		`INSERT INTO deliveries (message_id, connector, recipient, state, attempts, updated_at)
		 SELECT id, 'mqtt', '', 'delivered', 1, created_at + 10 FROM messages WHERE direction = 'in'`,
		`INSERT INTO sent_parts (delivery_id, seq, total, modem, mr, recipient, state, sent_at)
		 SELECT id, 1, 1, printf('sim%d', id % 2), id % 256, recipient, CASE state WHEN 'failed' THEN 'failed' ELSE 'delivered' END, updated_at - 3000
		 FROM deliveries WHERE connector = 'sms'`,
		`ANALYZE`,
	} {
		if _, err := s.DB().ExecContext(ctx, q, start, n, span); err != nil {
			t.Fatal(err)
		}
	}
	var nd, np int
	s.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM deliveries), (SELECT COUNT(*) FROM sent_parts)`).Scan(&nd, &np)
	fmt.Printf("stats: built %d messages (%d deliveries, %d sent parts) over 100 days in %s\n", n, nd, np, time.Since(built).Round(time.Millisecond))

	// What migration 0020 costs on this database: its indexes made again.
	t0 := time.Now()
	if _, err := s.DB().ExecContext(ctx, `DROP INDEX messages_from; DROP INDEX sent_parts_sent;`+migration0020(t)); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("stats: migration 0020 (its indexes) on %d messages: %s\n", n, time.Since(t0).Round(time.Millisecond))

	stop := make(chan struct{})
	var waits []time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			text := "hello"
			t0 := time.Now()
			err := s.Update(ctx, func(tx *Tx) error {
				m := &Message{Direction: Out, Peer: fmt.Sprintf("+1666%07d", i), Text: &text, Channel: "http", Kind: KindText}
				if err := tx.InsertMessage(m); err != nil {
					return err
				}
				return tx.InsertDelivery(&Delivery{MessageID: m.ID, Connector: "sms", Recipient: m.Peer}, "")
			})
			waits = append(waits, time.Since(t0))
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	since := time.UnixMilli(now - int64(7*24*time.Hour/time.Millisecond))
	num := "+15550000042"
	var total time.Duration
	for _, c := range []struct {
		name string
		f    func(tx *Tx) (string, error)
	}{
		{"one number (in, out per day, last seen, rate, times)", func(tx *Tx) (string, error) {
			st, err := tx.SenderStats("tel:"+num, "sms", num, since, time.UTC)
			return fmt.Sprintf("in %d, out %d, %d failed", st.In, st.Out, st.Failed), err
		}},
		{"per modem", func(tx *Tx) (string, error) {
			ms, err := tx.ModemStats(since, "")
			if err != nil || len(ms) == 0 {
				return "", err
			}
			return fmt.Sprintf("%d modems, %s sent %d parts, received %d", len(ms), ms[0].Modem, ms[0].PartsSent, ms[0].MessagesReceived), err
		}},
		{"per channel", func(tx *Tx) (string, error) {
			cs, err := tx.ChannelStats(since)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("sms in %d out %d, http in %d", cs[0].In, cs[0].Out, cs[5].In), err
		}},
	} {
		var best time.Duration
		var what string
		for range 3 {
			t0 := time.Now()
			if err := s.View(ctx, func(tx *Tx) (err error) { what, err = c.f(tx); return }); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); best == 0 || d < best {
				best = d
			}
		}
		total += best
		fmt.Printf("stats: 7 days of %d messages, %s: %s (%s)\n", n, c.name, best.Round(100*time.Microsecond), what)
	}
	// Each query alone, with its plan.
	for _, name := range slices.Sorted(maps.Keys(statsQueries)) {
		q := statsQueries[name]
		var args []any
		switch name {
		case "qSenderIn":
			args = []any{"tel:" + num, since.UnixMilli()}
		case "qSenderLast":
			args = []any{"tel:" + num}
		case "qSenderOut":
			args = []any{num, "sms", since.UnixMilli()}
		case "qModemSent", "qModemReceived":
			args = []any{since.UnixMilli(), "", ""}
		default:
			args = []any{since.UnixMilli()}
		}
		t0 := time.Now()
		rows, err := s.DB().QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		took := time.Since(t0)
		var plan []string
		prow, err := s.DB().QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		for prow.Next() {
			var id, parent, notused int
			var detail string
			prow.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		prow.Close()
		fmt.Printf("stats: %s %s, %d rows; plan: %s\n", name, took.Round(100*time.Microsecond), n, strings.Join(plan, "; "))
	}
	close(stop)
	wg.Wait()
	slices.Sort(waits)
	fmt.Printf("stats: the whole query (as outpost stats NUMBER runs it) %s; %d sends meanwhile, commit wait max %s\n",
		total.Round(time.Millisecond), len(waits), waits[len(waits)-1].Round(100*time.Microsecond))
}

// migration0020 is the text of migration 0020.
func migration0020(t *testing.T) string {
	b, err := migrations.ReadFile("migrations/0020_stats.sql")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
