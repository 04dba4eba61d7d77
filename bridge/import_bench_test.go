package bridge_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestImportBench (OUTPOST_IMPORT_BENCH=N rows; scripts/bench.sh style):
// a contacts import of N rows (a number, an email, a tag and a group
// each) into a database that holds N contacts already, while a small
// write commits every 10 ms as sends do. It reports how long the import
// held the write lock and the longest a write waited: what
// bridge.MaxImportRows is chosen from.
func TestImportBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("OUTPOST_IMPORT_BENCH"))
	if n <= 0 {
		t.Skip("set OUTPOST_IMPORT_BENCH=5000 (rows) to run")
	}
	h, _ := newHub(t, &fake{})
	h.MaxImportRows = 10 * n
	ctx := context.Background()
	csvOf := func(from int) string {
		var b strings.Builder
		b.WriteString("name,phones,email,tags,groups\n")
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&b, "Person %d,+1555%07d,p%d@example.org,t%d,g%d\n", i, i, i, i%7, i%50)
		}
		return b.String()
	}
	if _, err := h.ImportContacts(ctx, strings.NewReader(csvOf(0))); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var maxWait time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			began := time.Now()
			h.Store.Update(ctx, func(tx *store.Tx) error {
				return tx.AddGroup(fmt.Sprintf("w%d", began.UnixNano()))
			})
			maxWait = max(maxWait, time.Since(began))
		}
	}()
	began := time.Now()
	if _, err := h.ImportContacts(ctx, strings.NewReader(csvOf(n))); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	close(stop)
	wg.Wait()
	t.Logf("import of %d rows (onto %d): %v (%.0f rows/s); a write waited at most %v", n, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), maxWait.Round(time.Millisecond))
	_ = bridge.ErrInvalid
}
