package hw

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Holder is a process that has a serial device open.
type Holder struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
}

func (h Holder) String() string { return fmt.Sprintf("%s (pid %d)", h.Name, h.PID) }

// Holders lists the processes other than this one that have device open,
// read from procRoot ("/proc"). A pty's device side (the process holding
// its master: a modem simulator) is not a holder: it is the modem. It
// keeps one descriptor of the terminal side open (so the pty outlives
// its users); more than one is a user in the same process, such as a
// daemon running its simulated modems in-process.
func Holders(procRoot, device string) ([]Holder, error) {
	real, err := filepath.EvalSymlinks(device)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("%s is not a character device", real)
	}
	ptsIndex := ""
	if rest, ok := strings.CutPrefix(real, "/dev/pts/"); ok {
		ptsIndex = rest
	}
	procs, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []Holder
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		fdDir := filepath.Join(procRoot, p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to look at
		}
		holds, device := 0, false
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "/dev/") {
				continue
			}
			if ptsIndex != "" && (link == "/dev/ptmx" || link == "/dev/pts/ptmx") &&
				ptyIndex(filepath.Join(procRoot, p.Name(), "fdinfo", fd.Name())) == ptsIndex {
				device = true
				continue
			}
			if fi, err := os.Stat(filepath.Join(fdDir, fd.Name())); err == nil {
				if s, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&os.ModeCharDevice != 0 && s.Rdev == st.Rdev {
					holds++
				}
			}
		}
		if holds > 1 || holds == 1 && !device {
			out = append(out, Holder{PID: pid, Name: procName(procRoot, p.Name())})
		}
	}
	return out, nil
}

// ptyIndex reads the pts number a ptmx descriptor's fdinfo names.
func ptyIndex(fdinfo string) string {
	f, err := os.Open(fdinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "tty-index:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func procName(procRoot, pid string) string {
	b, err := os.ReadFile(filepath.Join(procRoot, pid, "comm"))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// modemManager returns the pid of a running ModemManager, or 0.
func modemManager(procRoot string) int {
	procs, _ := os.ReadDir(procRoot)
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && procName(procRoot, p.Name()) == "ModemManager" {
			return pid
		}
	}
	return 0
}

// PortNote says who else has device open, naming ModemManager, which
// probes every new serial port it sees and so makes a modem answer
// garbage or nothing; "" when nobody does.
func PortNote(procRoot, device string) string {
	hs, _ := Holders(procRoot, device)
	for _, h := range hs {
		if h.Name == "ModemManager" {
			return fmt.Sprintf("ModemManager %s has the port open: stop it (systemctl stop ModemManager) or make it ignore the modem (udev ENV{ID_MM_DEVICE_IGNORE}=\"1\")", h)
		}
	}
	if len(hs) > 0 {
		names := make([]string, len(hs))
		for i, h := range hs {
			names[i] = h.String()
		}
		return "the port is also open in " + strings.Join(names, ", ")
	}
	if pid := modemManager(procRoot); pid != 0 {
		return fmt.Sprintf("ModemManager (pid %d) is running and may be probing the port: stop it (systemctl stop ModemManager) or make it ignore the modem (udev ENV{ID_MM_DEVICE_IGNORE}=\"1\")", pid)
	}
	return ""
}
