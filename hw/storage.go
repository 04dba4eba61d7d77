package hw

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Storage is the use of the memory new messages are stored in (+CPMS,
// its third memory). A full one stops reception: the network keeps the
// messages until there is room.
type Storage struct {
	Memory string `json:"memory,omitempty"` // SM (SIM), ME (modem), MT (both)
	Used   int    `json:"used"`
	Total  int    `json:"total"`
	Full   bool   `json:"full,omitempty"`
	// Warning says, from StorageWarn percent up, how full it is and what
	// fills it.
	Warning string `json:"warning,omitempty"`
	// TimesFull counts the times it was found full, Cleared the messages
	// deleted from it by clearing runs, since the daemon started.
	TimesFull int `json:"times_full,omitempty"`
	Cleared   int `json:"cleared,omitempty"`
}

// storageState belongs to the supervisor goroutine.
type storageState struct {
	// backoff spaces the clearing runs of a store that stays full;
	// nextClear is when the next may run (monotonic): each failed delete
	// asks for a check, and without it a store whose deletes fail was
	// cleared again as fast as the modem answered.
	backoff   time.Duration
	nextClear time.Time
}

const (
	clearBackoffMin = time.Second
	clearBackoffMax = 30 * time.Second
)

// requestStorageCheck has the supervisor read the store's use soon: after
// a delete failed, or an answer said the memory is full (+CMS ERROR: 322).
func (m *ATModem) requestStorageCheck() {
	if m.storeCheckQueued.CompareAndSwap(false, true) {
		m.post(func(ctx context.Context, c *conn) error {
			m.storeCheckQueued.Store(false)
			return m.checkStorage(ctx, c)
		})
	}
}

// parseCPMS reads `+CPMS: "SM",3,30,"SM",3,30,"SM",3,30` (AT+CPMS?) or
// `+CPMS: 3,30,3,30,3,30` (AT+CPMS=…): the memory new messages go to
// (the third; the first when only one is given), its use and size.
func parseCPMS(line string) (mem string, used, total int, ok bool) {
	f := strings.Split(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "+CPMS:")), ",")
	type triple struct {
		mem         string
		used, total int
	}
	var ts []triple
	for i := 0; i < len(f); {
		var t triple
		if v := strings.TrimSpace(f[i]); strings.HasPrefix(v, `"`) {
			t.mem = strings.Trim(v, `"`)
			i++
		}
		if i+1 >= len(f) {
			break
		}
		u, err1 := strconv.Atoi(strings.TrimSpace(f[i]))
		n, err2 := strconv.Atoi(strings.TrimSpace(f[i+1]))
		if err1 != nil || err2 != nil {
			return "", 0, 0, false
		}
		t.used, t.total = u, n
		ts = append(ts, t)
		i += 2
	}
	if len(ts) == 0 {
		return "", 0, 0, false
	}
	t := ts[len(ts)-1]
	if len(ts) < 3 {
		t = ts[0]
	}
	return t.mem, t.used, t.total, true
}

// checkStorage reads the store's use into the status, warns before it is
// full, and clears a full one.
func (m *ATModem) checkStorage(ctx context.Context, c *conn) error {
	info, err := m.command(c, "+CPMS?", m.cfg.CommandTimeout)
	if err != nil {
		if errors.Is(err, ErrNotReady) {
			return err
		}
		m.log.Debug("cannot read message storage use", "err", err)
		return nil
	}
	var mem string
	var used, total int
	ok := false
	for _, l := range info {
		if strings.HasPrefix(l, "+CPMS:") {
			mem, used, total, ok = parseCPMS(l)
			break
		}
	}
	if !ok || total <= 0 {
		m.log.Debug("unreadable message storage use", "answer", info)
		return nil
	}
	before, _ := m.Status(ctx)
	full := used >= total
	warnAt := (total*m.cfg.StorageWarn + 99) / 100
	warning := ""
	switch {
	case full:
		warning = fmt.Sprintf("message store %s full (%d of %d): new messages wait at the network; clearing what is already committed", mem, used, total)
	case used >= warnAt:
		warning = fmt.Sprintf("message store %s %d%% full (%d of %d): reception stops when it is full", mem, used*100/total, used, total)
	}
	m.setStatus(func(s *Status) {
		s.Storage.Memory, s.Storage.Used, s.Storage.Total, s.Storage.Full = mem, used, total, full
		if !full || !before.Storage.Full {
			s.Storage.Warning = warning
		}
		if full && !before.Storage.Full {
			s.Storage.TimesFull++
		}
	})
	switch {
	case full && !before.Storage.Full:
		m.log.Warn("message store full: reception has stopped until there is room; clearing what is already committed", "memory", mem, "used", used, "total", total)
	case !full && before.Storage.Full:
		m.log.Info("message store has room again", "memory", mem, "used", used, "total", total)
	case warning != "" && before.Storage.Warning == "":
		m.log.Warn("message store filling up", "memory", mem, "used", used, "total", total)
	}
	if !full {
		m.store.backoff, m.store.nextClear = 0, time.Time{}
		return nil
	}
	if time.Now().Before(m.store.nextClear) {
		return nil // the run after the backoff is already due
	}
	return m.clearStore(ctx, c, used, total)
}

// clearStore hands up again every inbound message on a full store that
// is not already on its way: the caller commits those it has not (never
// deleted before that) and recognises those it has (committed, but their
// delete failed, or done by another program), and deletes both. What
// stays is said in the status: stored SMS-SUBMITs are another program's
// and not Outpost's to delete. While the store stays full it is looked
// at again, less and less often.
func (m *ATModem) clearStore(ctx context.Context, c *conn, used, total int) error {
	info, err := m.command(c, "+CMGL=4", m.cfg.CommandTimeout*3)
	if err != nil {
		if errors.Is(err, ErrNotReady) {
			return err
		}
		m.log.Warn("listing a full message store failed", "err", err)
	}
	var inbound, foreign int
	for _, s := range parseListing(info, "+CMGL:", 0) {
		if s.stat == 2 || s.stat == 3 {
			foreign++
			continue
		}
		inbound++
		if err := m.handUpStored(ctx, c, s, false, true); err != nil {
			return err
		}
	}
	warning := fmt.Sprintf("message store full (%d of %d): new messages wait at the network; %d inbound message(s) on it handed up to be committed and deleted", used, total, inbound)
	if foreign > 0 {
		warning += fmt.Sprintf("; %d are messages another program saved to send (stored SMS-SUBMITs), which Outpost does not delete: remove them with that program", foreign)
	}
	m.setStatus(func(s *Status) { s.Storage.Warning = warning })
	m.log.Info("clearing the full message store", "inbound", inbound, "saved_by_another_program", foreign)
	m.store.backoff = min(max(m.store.backoff*2, clearBackoffMin), clearBackoffMax)
	m.store.nextClear = time.Now().Add(m.store.backoff)
	time.AfterFunc(m.store.backoff, m.requestStorageCheck)
	return nil
}

// storeError notes an answer that says the store is full.
func (m *ATModem) storeError(code int) {
	if code == 322 {
		m.requestStorageCheck()
	}
}
