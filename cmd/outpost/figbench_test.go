package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The figures of acceptance item 5, measured on the real binary built as a
// release is (CGO off, stripped), not the race binary of the other tests:
// memory idle and while a backlog drains, and what the box writes to its
// data folder when nothing happens. scripts/bench.sh runs it; a benchmark,
// not a test (it asserts only that the daemon did its work).
//
//	OUTPOST_FIG_BENCH=1     run it
//	OUTPOST_FIG_SETTLE=30s  after "outpost running", before the idle window
//	OUTPOST_FIG_IDLE=2m     the idle window (memory and bytes written)
//	OUTPOST_FIG_BACKLOG=N   messages queued then drained (20000, a run of
//	                        about 10 minutes; 100000 for the figure of
//	                        acceptance item 5, 20 minutes more)
//	OUTPOST_FIG_TO=ADDR     where they go (mqtt: the local broker, the
//	                        fastest connector; +15555550100: SMS to the
//	                        simulated network's echo, which answers each)
//	OUTPOST_FIG_HOLD=D      how long after the first send they are due
//	                        (default: the backlog at 400 sends/s)
func TestFiguresBench(t *testing.T) {
	if os.Getenv("OUTPOST_FIG_BENCH") == "" {
		t.Skip("a benchmark: scripts/bench.sh runs it (OUTPOST_FIG_BENCH=1)")
	}
	settle := envDuration(t, "OUTPOST_FIG_SETTLE", 30*time.Second)
	idle := envDuration(t, "OUTPOST_FIG_IDLE", 2*time.Minute)
	n := 20000
	if v := os.Getenv("OUTPOST_FIG_BACKLOG"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			t.Fatalf("OUTPOST_FIG_BACKLOG=%q: want a count", v)
		}
	}
	to := os.Getenv("OUTPOST_FIG_TO")
	if to == "" {
		to = "mqtt"
	}
	hold := envDuration(t, "OUTPOST_FIG_HOLD", time.Duration(n)*time.Second/400+5*time.Second)

	bin := filepath.Join(t.TempDir(), "outpost")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	st, _ := os.Stat(bin)
	fmt.Printf("figures: binary %s, %.1f MB (CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'), %s\n", runtime.GOOS+"/"+runtime.GOARCH, mb(st.Size()), fmt.Sprint(runtime.NumCPU(), " cores"))

	// The defaults, but for a free broker port and the data folder.
	g := newGatewayWith(t, "", "")
	cfg := fmt.Sprintf("data_dir = %q\n[mqtt]\nlisten = %q\n", filepath.Join(g.dir, "data"), g.mqtt)
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Start to ready ("outpost running": socket, broker, connectors up),
	// the first time (the database is made) and again on it.
	t0 := time.Now()
	d := startCmd(t, g.dir, nil, bin, "run", "--config", g.config)
	d.waitReady(t)
	first := time.Since(t0)
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	t0 = time.Now()
	d = startCmd(t, g.dir, nil, bin, "run", "--config", g.config)
	d.waitReady(t)
	fmt.Printf("figures: start to ready: %s on a new data folder, %s on an existing one (polled every 10ms)\n",
		first.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	// A CLI command's cost: a process start, a request over the socket.
	for _, args := range [][]string{{"version"}, {"status", "--json", "--config", g.config}} {
		const runs = 20
		t0 = time.Now()
		for range runs {
			cmd := exec.Command(bin, args...)
			cmd.Dir = g.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		fmt.Printf("figures: outpost %s: %s a command (mean of %d)\n", args[0], (time.Since(t0) / runs).Round(100*time.Microsecond), runs)
	}
	pid := d.cmd.Process.Pid
	data := filepath.Join(g.dir, "data")
	fmt.Printf("figures: start: %s\n", memLine(t, pid))

	time.Sleep(settle)
	fmt.Printf("figures: settled (%s): %s\n", settle, memLine(t, pid))
	w0, f0 := writeBytes(t, pid), dataFiles(t, data)
	s := sampleRSS(pid)
	time.Sleep(idle)
	peak := s.stop()
	w1, f1 := writeBytes(t, pid), dataFiles(t, data)
	mins := idle.Minutes()
	fmt.Printf("figures: idle %s: %s, highest VmRSS sampled %s\n", idle, memLine(t, pid), kb(peak))
	fmt.Printf("figures: idle %s: written %.1f KiB/min (write_bytes %d B), data folder %s → %s\n",
		idle, float64(w1-w0)/1024/mins, w1-w0, f0, f1)
	if n == 0 {
		return
	}

	// The backlog: every message due at once, after all are queued, so
	// that the queue is whole when the dispatcher starts on it.
	c := socketClient(filepath.Join(data, "outpost.sock"), 0) // client.go
	due := time.Now().Add(hold)
	s = sampleRSS(pid)
	t0 = time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n) && !t.Failed(); i = next.Add(1) {
				body, _ := json.Marshal(map[string]any{"to": []string{to}, "text": fmt.Sprintf("backlog %d", i), "not_before": due.UTC().Format(time.RFC3339Nano)})
				resp, err := c.Post("http://outpost/v1/messages", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
				if resp.StatusCode != http.StatusCreated {
					var b bytes.Buffer
					b.ReadFrom(resp.Body)
					t.Errorf("send %d: %s %s", i, resp.Status, b.String())
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	queued := time.Since(t0)
	qpeak := s.stop()
	early := "all queued before they were due"
	if time.Now().After(due) {
		early = fmt.Sprintf("due %s before the last was queued: set OUTPOST_FIG_HOLD longer", time.Since(due).Round(time.Second))
	}
	fmt.Printf("figures: queued %d to %s in %s (%.0f/s; %s): %s, highest VmRSS sampled %s\n",
		n, to, queued.Round(time.Millisecond), float64(n)/queued.Seconds(), early, memLine(t, pid), kb(qpeak))

	s = sampleRSS(pid)
	time.Sleep(time.Until(due))
	t1 := time.Now()
	var last map[string]int
	for {
		var st struct {
			Queues map[string]map[string]int `json:"queues"`
		}
		resp, err := c.Get("http://outpost/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		last = map[string]int{}
		for dest, q := range st.Queues {
			if k := q["queued"] + q["scheduled"] + q["sending"]; k > 0 {
				last[dest] = k
			}
		}
		if len(last) == 0 {
			break
		}
		if time.Since(t1) > 2*time.Hour {
			t.Fatalf("not drained after 2h: %v", last)
		}
		time.Sleep(time.Second)
	}
	drained := time.Since(t1)
	dpeak := s.stop()
	db := dataFiles(t, data)
	fmt.Printf("figures: drained in %s (%.0f/s): %s, highest VmRSS sampled %s; data folder %s\n",
		drained.Round(time.Second), float64(n)/drained.Seconds(), memLine(t, pid), kb(dpeak), db)
	fmt.Println("figures: targets: VmRSS idle < 30 MB, while a 100,000-message backlog drains < 64 MB (OUTPOST_FIG_BACKLOG=100000); idle writes < 64 KiB/min (OUTPOST_FIG_IDLE=20m: the modems' history is written every 15 minutes)")
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration", name, v)
	}
	return d
}

// procStatus reads the kB fields of /proc/PID/status.
func procStatus(pid int) map[string]int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			m[k], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return m
}

func memLine(t *testing.T, pid int) string {
	m := procStatus(pid)
	if m == nil {
		t.Fatalf("the daemon (pid %d) is gone", pid)
	}
	return fmt.Sprintf("VmRSS %s (anon %s, file %s), VmHWM %s", kb(m["VmRSS"]), kb(m["RssAnon"]), kb(m["RssFile"]), kb(m["VmHWM"]))
}

func kb(v int64) string  { return fmt.Sprintf("%.1f MB", float64(v)/1024) }
func mb(v int64) float64 { return float64(v) / (1 << 20) }

// rssSampler keeps the highest VmRSS seen every 200 ms: VmHWM is since
// the start, this is since the sampler's.
type rssSampler struct {
	done chan struct{}
	max  chan int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), max: make(chan int64, 1)}
	go func() {
		var hi int64
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			hi = max(hi, procStatus(pid)["VmRSS"])
			select {
			case <-s.done:
				s.max <- hi
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 { close(s.done); return <-s.max }

// writeBytes is what the process caused to be written to storage
// (/proc/PID/io write_bytes: pages it dirtied, whichever file).
func writeBytes(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatalf("no write_bytes in /proc/%d/io", pid)
	return 0
}

// dataFiles is the sizes of the database and its WAL.
func dataFiles(t *testing.T, dir string) string {
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	return fmt.Sprintf("db %d B, wal %d B", size("outpost.db"), size("outpost.db-wal"))
}
