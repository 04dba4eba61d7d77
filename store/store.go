// Package store owns every durable state of Outpost: one SQLite file (WAL,
// synchronous=FULL) with embedded numbered migrations. Writes go through a
// group committer so that many concurrent writers share one fsync; reads run
// concurrently on their own connections.
//
// It imports nothing of Outpost's. It does no network I/O and knows nothing
// of modems, PDUs or MQTT: callers pass it decoded values.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver

	"github.com/outpost-sms/outpost/store/clock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("duplicate")
	ErrClosed    = errors.New("store closed")
)

// maxGroup bounds how many queued writes share one transaction.
const maxGroup = 256

// Store is the SQLite database. It is safe for concurrent use.
type Store struct {
	clk    atomic.Pointer[clockBox]
	log    *slog.Logger
	watch  clock.Watch
	jump   *pending // committer only
	jumpMu sync.Mutex
	jumps  []Jumped
	onJump []func()

	db     *sql.DB
	path   string
	every  time.Duration // checkpoint period
	writes chan *write

	ckMu sync.Mutex
	ck   Checkpoint // the last one
	done chan struct{}
	wg   sync.WaitGroup
	// closing, under closeMu, turns new writes away: writes is
	// buffered, and what a sender put in it before is committed by the
	// committer on its way out.
	closeMu sync.RWMutex
	closing bool
	// stmts holds prepared statements by query (Tx.stmt).
	stmts sync.Map
	// hubDelivery is the hub connector's (OnHubDelivery).
	hubDelivery HubDeliveryFunc
	// hubAtMost bounds the hub queue from above (see hubBound).
	hubAtMost hubBound
	// hooks count what commits, for metrics (SetHooks).
	hooks atomic.Pointer[Hooks]

	closeOnce sync.Once
	closeErr  error
}

type write struct {
	ctx   context.Context
	fn    func(*Tx) error
	err   chan error
	after []func() // set before err is sent
	// done, for Submit, takes the outcome instead of err, on the
	// committer, in commit order.
	done func(error)
}

// finish hands a write its outcome.
func (w *write) finish(err error) {
	if w.done == nil {
		w.err <- err
		return
	}
	if err == nil {
		for _, f := range w.after {
			f()
		}
	}
	w.done(err)
}

// Options tune Open.
type Options struct {
	// Synchronous is SQLite's synchronous pragma; "FULL" (the default)
	// survives power loss.
	Synchronous string
	// CheckpointEvery is how often, if anything was written since, the
	// committer checkpoints the WAL into the database and truncates it
	// (default 5 minutes). Between those, SQLite's own checkpoint runs
	// whenever the WAL passes walAutoCheckpoint pages (400 KiB).
	CheckpointEvery time.Duration
	// Clock replaces the system clock (tests).
	Clock Clock
	// Log gets a warning on every jump of the clock (default: none).
	Log *slog.Logger
}

// walAutoCheckpoint is the WAL size, in pages, at which the commit that
// passes it copies the WAL into the database (SQLite's automatic
// checkpoint, 1,000 pages by default). The commit waits for that copy,
// and every write queued behind it: on a database of 1,000,000 messages
// the pages a batch of deletes touched are all over the file, and a
// 1,000-page checkpoint held sends 200 ms and more behind a prune
// (250 pages: 71 and 108 ms in two runs). 100 pages is a tenth of that
// wait, ten times as often; one device publishing at full speed is not
// slower for it.
const walAutoCheckpoint = 100

// walLimit is what a WAL that a burst grew is cut back to after a
// checkpoint (SQLite's journal_size_limit).
const walLimit = 4 << 20

// Open opens (creating if needed) the database at path, applies pending
// migrations and starts the group committer.
func Open(ctx context.Context, dbPath string, opts Options) (*Store, error) {
	if opts.Synchronous == "" {
		opts.Synchronous = "FULL"
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 5 * time.Minute
	}
	// The messages are people's: the database and its WAL and shared
	// memory files are the user's alone, also when they were made
	// before (by an older version, or under another umask). SQLite
	// gives a new WAL and shm the database file's mode.
	for _, f := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", f, err)
		}
	}
	if f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, diskError(dbPath, fmt.Errorf("open %s: %w", dbPath, err))
	} else {
		f.Close()
	}
	dsn := "file:" + dbPath + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(" + opts.Synchronous + ")" +
		"&_pragma=journal_size_limit(" + strconv.Itoa(walLimit) + ")" +
		"&_pragma=wal_autocheckpoint(" + strconv.Itoa(walAutoCheckpoint) + ")"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dbPath, err)
	}
	db.SetMaxOpenConns(8)
	s := &Store{db: db, path: dbPath, every: opts.CheckpointEvery, writes: make(chan *write, maxGroup), done: make(chan struct{})}
	s.log = opts.Log
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	s.SetClock(opts.Clock)
	if err := s.check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, diskError(dbPath, err)
	}
	if err := s.rebaseAtOpen(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("rebase times recorded before the clock was set: %w", err)
	}
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// ErrCorrupt is a database that SQLite finds damaged, or a file that is
// not a database.
var ErrCorrupt = errors.New("database is damaged")

// check runs SQLite's quick_check (the structure of every page and index,
// without comparing indexes to tables: seconds on a large file, not
// minutes) so that a damaged file is reported at start with what to do,
// not found by the first write that touches the damage.
func (s *Store) check(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return s.unreadable(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.unreadable(err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return s.unreadable(err)
	}
	if len(problems) > 0 {
		return s.corrupt(errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

// unreadable words an error that stopped the check before it could say
// anything of the pages: a damaged file only when SQLite says so (not a
// database, malformed); a full disk as such (an existing database on a
// full disk fails with an I/O error on its shared-memory file, not
// "full"); anything else as it is, with no advice that would throw the
// data away.
func (s *Store) unreadable(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") || strings.Contains(msg, "SQLITE_CORRUPT") || strings.Contains(msg, "SQLITE_NOTADB"):
		return s.corrupt(err)
	case diskError(s.path, err) != err:
		return diskError(s.path, err)
	case isFull(filepath.Dir(s.path)):
		return fmt.Errorf("%w on %s: %v", ErrDiskFull, filepath.Dir(s.path), err)
	}
	return fmt.Errorf("cannot read %s: %w", s.path, err)
}

// isFull reports whether the file system of dir has (next to) no room
// left for a writer.
func isFull(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return int64(st.Bavail)*int64(st.Bsize) < 64<<10
}

// corrupt words a damaged database: what SQLite said, and what to do.
func (s *Store) corrupt(err error) error {
	return fmt.Errorf("%w: %s: %v. Stop Outpost, keep a copy of the folder, then either restore the file "+
		"from a backup or recover what SQLite can read (sqlite3 %s .recover | sqlite3 new.db) and put new.db in its "+
		"place; moving the file aside starts Outpost with an empty database", ErrCorrupt, s.path, err, s.path)
}

// ErrDiskFull is a write refused because the file system has no room.
var ErrDiskFull = errors.New("no space left")

// diskError says "no space left on <folder>" for SQLite's and the
// system's ways of saying the disk is full; other errors are returned as
// they are.
func diskError(dbPath string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(msg, "database or disk is full") ||
		strings.Contains(msg, "SQLITE_FULL") || strings.Contains(msg, "no space left on device") {
		return fmt.Errorf("%w on %s: %v", ErrDiskFull, filepath.Dir(dbPath), err)
	}
	return err
}

// Close stops the committer after the writes already queued and closes the
// database. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closing = true
		s.closeMu.Unlock()
		close(s.done)
		s.wg.Wait()
		s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// DB gives read access for tools and tests.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", base)
		}
		if err := s.applyMigration(ctx, v, name); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, version int, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, s.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// Update runs fn in a write transaction and returns once it is durably
// committed. Concurrent Updates are grouped into one transaction (each in
// its own savepoint, so one failing fn does not undo the others). fn must
// not block on anything but the database; it may run more than once only
// if it returns an error for a failed commit.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	w := &write{ctx: ctx, fn: fn, err: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closing {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.writes <- w:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	// Once queued the write is not abandoned: its outcome is what the
	// caller must report, so wait for it even if ctx ends.
	err := <-w.err
	if err == nil {
		// On the caller's goroutine, not the committer's: a callback may
		// publish, and what it publishes may be stored in turn.
		for _, f := range w.after {
			f()
		}
	}
	return err
}

// Submit queues fn like Update but does not wait for the commit: done is
// called with the outcome once the transaction is durably committed (or
// failed), on the committer, in the order of the Submit calls. done and
// fn's AfterCommit callbacks must not block. Submit blocks only while
// maxGroup writes already wait for the committer: while it commits one
// group, the next one gathers (with an unbuffered hand-off a single
// submitter got one commit per write).
func (s *Store) Submit(ctx context.Context, fn func(*Tx) error, done func(error)) {
	w := &write{ctx: ctx, fn: fn, done: done}
	s.closeMu.RLock()
	if s.closing {
		s.closeMu.RUnlock()
		done(ErrClosed)
		return
	}
	s.writes <- w // the committer runs until closing is set
	s.closeMu.RUnlock()
}

// View runs fn in a read transaction.
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(&Tx{tx: tx, ctx: ctx, now: s.Now(), s: s})
}

func (s *Store) commitLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	// The clock is looked at every second even with nothing to write, so
	// that a jump is made up for before what waits on it misfires.
	clockTick := time.NewTicker(time.Second)
	defer clockTick.Stop()
	dirty := false
	for {
		select {
		case <-clockTick.C:
			if s.observe(); s.jump != nil {
				s.commitGroup(nil)
			}
		case <-tick.C:
			if dirty {
				// A busy or failed one is tried again next time.
				dirty = !s.checkpoint()
			}
		case w := <-s.writes:
			dirty = true
			s.commitGroup(s.gather(w))
		case <-s.done:
			// No write comes in any more: commit those queued.
			for {
				select {
				case w := <-s.writes:
					s.commitGroup(s.gather(w))
				default:
					return
				}
			}
		}
	}
}

// gather returns w and the writes queued behind it, up to maxGroup.
func (s *Store) gather(w *write) []*write {
	group := []*write{w}
	for len(group) < maxGroup {
		select {
		case w := <-s.writes:
			group = append(group, w)
		default:
			return group
		}
	}
	return group
}

func (s *Store) commitGroup(group []*write) {
	ctx := context.Background()
	fail := func(err error) {
		err = diskError(s.path, err)
		for _, w := range group {
			w.finish(err)
		}
	}
	now := s.observe()
	began := time.Now()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	// A jump of the clock is made up for first, in the same transaction:
	// no write of the group compares a time with a stale one.
	jumped, err := s.adjust(ctx, sqlTx, now)
	if err != nil {
		sqlTx.Rollback()
		fail(err)
		return
	}
	errs := make([]error, len(group))
	for i, w := range group {
		if err := w.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := s.execPrepared(ctx, sqlTx, `SAVEPOINT w`); err != nil {
			errs[i] = err
			continue
		}
		tx := &Tx{tx: sqlTx, ctx: ctx, now: now, s: s, write: true}
		errs[i] = runFn(w.fn, tx)
		if errs[i] != nil {
			if _, err := s.execPrepared(ctx, sqlTx, `ROLLBACK TO w`); err != nil {
				sqlTx.Rollback()
				fail(fmt.Errorf("rollback savepoint: %w", err))
				return
			}
		} else {
			w.after = tx.after
		}
		if _, err := s.execPrepared(ctx, sqlTx, `RELEASE w`); err != nil {
			sqlTx.Rollback()
			fail(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := sqlTx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	if h := s.hooks.Load(); h != nil && h.Commit != nil && len(group) > 0 {
		h.Commit(time.Since(began), len(group))
	}
	if jumped != nil {
		s.jump = nil
		s.noteJump(*jumped)
	}
	for i, w := range group {
		w.finish(diskError(s.path, errs[i]))
	}
}

// execPrepared runs q in sqlTx as a statement prepared once (SQLite
// parses a statement anew on every Exec otherwise; the savepoints of every
// write are most of what the committer parses).
func (s *Store) execPrepared(ctx context.Context, sqlTx *sql.Tx, q string) (sql.Result, error) {
	st, err := (&Tx{tx: sqlTx, ctx: ctx, s: s}).stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx)
}

// Checkpoint is the outcome of the committer's last WAL checkpoint.
type Checkpoint struct {
	At time.Time `json:"at"`
	// Busy: a reader kept it from finishing; the next one tries again.
	Busy bool `json:"busy,omitempty"`
	// WALBytes is the WAL's size before it.
	WALBytes int64  `json:"wal_bytes"`
	Err      string `json:"error,omitempty"`
}

// checkpoint copies the WAL into the database and truncates it. It runs
// on the committer, between groups, so no write races it, and it does not
// wait for readers: a read in progress makes it busy at once (the writes
// queued behind it would wait otherwise), and the next period tries
// again. It reports whether it finished.
func (s *Store) checkpoint() bool {
	ctx := context.Background()
	ck := Checkpoint{At: s.Now()}
	if st, err := os.Stat(s.path + "-wal"); err == nil {
		ck.WALBytes = st.Size()
	}
	err := func() error {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
			return err
		}
		defer conn.ExecContext(ctx, `PRAGMA busy_timeout = 10000`)
		var busy, log, done int // after TRUNCATE, log and done are 0
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
			return err
		}
		ck.Busy = busy != 0
		return nil
	}()
	if err != nil {
		ck.Err = err.Error()
	}
	s.ckMu.Lock()
	s.ck = ck
	s.ckMu.Unlock()
	return err == nil && !ck.Busy
}

// Files is the size of the database and of its WAL on disk, and the last
// checkpoint, for status.
type Files struct {
	DBBytes    int64      `json:"db_bytes"`
	WALBytes   int64      `json:"wal_bytes"`
	Checkpoint Checkpoint `json:"last_checkpoint,omitzero"`
}

// Files reports the database's size on disk.
func (s *Store) Files() Files {
	var f Files
	if st, err := os.Stat(s.path); err == nil {
		f.DBBytes = st.Size()
	}
	if st, err := os.Stat(s.path + "-wal"); err == nil {
		f.WALBytes = st.Size()
	}
	s.ckMu.Lock()
	f.Checkpoint = s.ck
	s.ckMu.Unlock()
	return f
}

func runFn(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in store update: %v", r)
		}
	}()
	return fn(tx)
}

// Tx is one transaction (or one savepoint of a grouped transaction).
type Tx struct {
	tx    *sql.Tx
	ctx   context.Context
	now   time.Time
	after []func()
	s     *Store
	write bool // the committer's: it sees every write committed so far
}

// stmt returns q prepared for this transaction. The statement is
// prepared once per connection of the pool and kept: parsing a query was
// a good part of what the hot ones cost (the hub queue's counters, read
// for every batch of pass-through messages).
func (tx *Tx) stmt(q string) (*sql.Stmt, error) {
	if tx.s == nil {
		return tx.tx.PrepareContext(tx.ctx, q)
	}
	ps, ok := tx.s.stmts.Load(q)
	if !ok {
		p, err := tx.s.db.PrepareContext(tx.ctx, q)
		if err != nil {
			return nil, err
		}
		var loaded bool
		if ps, loaded = tx.s.stmts.LoadOrStore(q, p); loaded {
			p.Close()
		}
	}
	return tx.tx.StmtContext(tx.ctx, ps.(*sql.Stmt)), nil
}

// Now is the transaction's time.
func (tx *Tx) Now() time.Time { return tx.now }

// AfterCommit registers f to run once the transaction is durably committed
// (never if it is rolled back). f runs on the goroutine that called
// Update, before Update returns.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

func (tx *Tx) exec(q string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(tx.ctx, q, args...)
}

// NewID returns a new time-sortable message id (UUIDv7).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
