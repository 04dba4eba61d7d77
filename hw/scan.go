package hw

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warthog618/modem/at"
	"go.bug.st/serial/enumerator"
	"golang.org/x/sys/unix"
)

// DefaultScan is where modems are looked for when a config names none:
// USB serial ports and their stable names.
var DefaultScan = []string{"/dev/ttyUSB*", "/dev/ttyACM*", "/dev/serial/by-id/*"}

// PortInfo is what a scan found on one serial port.
type PortInfo struct {
	// Path is the port's name (a /dev/serial/by-id link when there is
	// one: it survives a reboot); Real is the device it names.
	Path    string `json:"path"`
	Real    string `json:"real,omitempty"`
	USB     bool   `json:"usb"`
	VID     string `json:"vid,omitempty"`
	PID     string `json:"pid,omitempty"`
	Serial  string `json:"serial,omitempty"`
	Product string `json:"product,omitempty"`
	// AT says whether it answered AT; the rest is what it said.
	AT           bool   `json:"at"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	IMEI         string `json:"imei,omitempty"`
	IMSI         string `json:"imsi,omitempty"`
	ICCID        string `json:"iccid,omitempty"`
	Operator     string `json:"operator,omitempty"`
	// Busy names the processes that have the port open: it was not
	// probed (a probe would disturb them, and they it).
	Busy  string `json:"busy,omitempty"`
	Error string `json:"error,omitempty"`
}

// Ports lists the serial ports matching globs (DefaultScan when none),
// one entry per device, with the USB details sysfs gives. It opens none.
func Ports(globs []string) ([]PortInfo, error) {
	if len(globs) == 0 {
		globs = DefaultScan
	}
	byReal := map[string]*PortInfo{}
	for _, g := range globs {
		paths, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("scan %q: %w", g, err)
		}
		for _, p := range paths {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue // a dangling link: a device that went away
			}
			if !serialDevice(real) {
				continue
			}
			if e, ok := byReal[real]; ok {
				if strings.HasPrefix(p, "/dev/serial/by-id/") {
					e.Path = p
				}
				continue
			}
			byReal[real] = &PortInfo{Path: p, Real: real}
		}
	}
	if details, err := enumerator.GetDetailedPortsList(); err == nil {
		for _, d := range details {
			if e, ok := byReal[d.Name]; ok && d.IsUSB {
				e.USB, e.VID, e.PID, e.Serial, e.Product = true, d.VID, d.PID, d.SerialNumber, d.Product
			}
		}
	}
	out := make([]PortInfo, 0, len(byReal))
	for _, e := range byReal {
		if e.Real == e.Path {
			e.Real = ""
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// serialDevice says whether path is a serial port: a character device of
// the tty class, or a pty's terminal side (in no class), but not a
// console (/dev/tty, /dev/console, the virtual terminals) nor /dev/ptmx.
// A glob such as /dev/* must not have the scan open any other device
// (opening /dev/watchdog arms it) nor type AT on a console.
func serialDevice(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	major, minor := unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	switch {
	case strings.HasPrefix(path, "/dev/pts/") && path != "/dev/pts/ptmx":
		return true
	case major == 5, major == 4 && minor < 64:
		return false
	}
	if _, err := os.Stat("/sys/dev/char"); err != nil {
		return true // no sysfs (a container's): the device cannot be told
	}
	class, err := os.Readlink(fmt.Sprintf("/sys/dev/char/%d:%d/subsystem", major, minor))
	return err == nil && filepath.Base(class) == "tty"
}

// Probe asks the modem on path who it is (AT, then its IMEI, SIM and
// operator), each command within timeout, and closes the port.
func Probe(path string, baud int, timeout time.Duration) PortInfo {
	info := PortInfo{Path: path}
	port, err := OpenSerial(path, baud)()
	if err != nil {
		info.Error = err.Error()
		return info
	}
	a := at.New(port, at.WithTimeout(timeout))
	defer func() {
		port.Close()
		<-a.Closed()
	}()
	// A half-typed SMS left by another program would swallow our AT.
	a.Escape([]byte("\r\n")...)
	if _, err := a.Command("E0"); err != nil {
		if _, err = a.Command(""); err != nil {
			info.Error = "does not answer AT: " + err.Error()
			return info
		}
	}
	info.AT = true
	get := func(cmd string) string {
		lines, err := a.Command(cmd)
		if err != nil || len(lines) == 0 {
			return ""
		}
		v := strings.TrimSpace(lines[0])
		if i := strings.Index(v, ":"); i >= 0 && strings.HasPrefix(v, "+") {
			v = strings.TrimSpace(v[i+1:])
		}
		return strings.Trim(v, `"`)
	}
	info.Manufacturer, info.Model, info.IMEI, info.IMSI = get("+CGMI"), get("+CGMM"), get("+CGSN"), get("+CIMI")
	if info.ICCID = get("+CCID"); info.ICCID == "" {
		info.ICCID = get("+ICCID")
	}
	if f := strings.Split(get("+COPS?"), ","); len(f) >= 3 {
		info.Operator = strings.Trim(strings.TrimSpace(f[2]), `"`)
	}
	return info
}

// Identity is how a modem is recognised whatever port it is on.
type Identity struct {
	IMEI  string
	ICCID string
}

func (id Identity) String() string {
	var s []string
	if id.IMEI != "" {
		s = append(s, "IMEI "+id.IMEI)
	}
	if id.ICCID != "" {
		s = append(s, "ICCID "+id.ICCID)
	}
	return strings.Join(s, " and ")
}

// matches compares what a port said with id (an ICCID's padding F and
// case aside).
func (id Identity) matches(p PortInfo) bool {
	norm := func(s string) string { return strings.TrimRight(strings.ToUpper(s), "F") }
	if id.IMEI != "" && id.IMEI != p.IMEI {
		return false
	}
	if id.ICCID != "" && norm(id.ICCID) != norm(p.ICCID) {
		return false
	}
	return id.IMEI != "" || id.ICCID != ""
}

// Binder finds modems by identity among the serial ports, one scan at a
// time, and keeps every port to one modem: a port bound to a modem, or
// open in another process, is not probed.
type Binder struct {
	Baud    int           // default 115200
	Timeout time.Duration // per probe command (default 1s)
	Proc    string        // "/proc"

	scan  sync.Mutex
	mu    sync.Mutex
	bound map[string]string // real path → modem id
	nodes map[string]uint64 // real path → its device node's inode when bound
}

func (b *Binder) defaults() {
	if b.Baud == 0 {
		b.Baud = 115200
	}
	if b.Timeout == 0 {
		b.Timeout = time.Second
	}
	if b.Proc == "" {
		b.Proc = "/proc"
	}
}

// Claim reserves device for the modem id (a modem configured by path).
func (b *Binder) Claim(id, device string) {
	real, err := filepath.EvalSymlinks(device)
	if err != nil {
		real = device
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bound == nil {
		b.bound, b.nodes = map[string]string{}, map[string]uint64{}
	}
	b.bound[real] = id
	b.nodes[real] = inode(real)
}

// inode identifies a device node: a device unplugged and plugged back
// gets a new node even at the same path.
func inode(path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func (b *Binder) owner(real string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bound[real]
}

func (b *Binder) release(id string) (last string, node uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.bound {
		if v == id {
			delete(b.bound, k)
			last, node = k, b.nodes[k]
			delete(b.nodes, k)
		}
	}
	return last, node
}

// boundPort is a port found by identity: it says where it is.
type boundPort struct {
	io.ReadWriteCloser
	path string
}

func (p boundPort) Device() string { return p.path }

// ErrNotFound is the error of an Opener that found no port with the
// modem's identity.
var ErrNotFound = errors.New("modem not found")

// Opener returns an Open (Config.Open) that scans globs for the modem
// with identity want and opens its port: the modem is found again
// wherever it comes back. The port it was on last is tried first.
func (b *Binder) Opener(id string, want Identity, globs []string) func() (io.ReadWriteCloser, error) {
	b.defaults()
	return func() (io.ReadWriteCloser, error) {
		b.scan.Lock()
		defer b.scan.Unlock()
		last, node := b.release(id)
		ports, err := Ports(globs)
		if err != nil {
			return nil, err
		}
		sort.SliceStable(ports, func(i, j int) bool { return ports[i].Real == last || ports[i].Path == last })
		var looked, busy []string
		for _, p := range ports {
			real := p.Real
			if real == "" {
				real = p.Path
			}
			if b.owner(real) != "" || b.owner(p.Path) != "" {
				continue
			}
			if hs, _ := Holders(b.Proc, p.Path); len(hs) > 0 {
				busy = append(busy, fmt.Sprintf("%s (open in %s)", p.Path, hs[0]))
				continue
			}
			info := Probe(p.Path, b.Baud, b.Timeout)
			looked = append(looked, p.Path)
			// A port that was this modem's, never unplugged since (the
			// same device node), and gone silent is still its: a hung
			// modem cannot say who it is, and must be found to be reset
			// (heal.go).
			silent := !info.AT && real == last && node != 0 && inode(real) == node
			if !want.matches(info) && !silent {
				continue
			}
			port, err := OpenSerial(p.Path, b.Baud)()
			if err != nil {
				return nil, err
			}
			b.Claim(id, p.Path)
			return boundPort{port, p.Path}, nil
		}
		msg := fmt.Sprintf("no port answers with %s (probed: %s)", want, strings.Join(looked, ", "))
		if len(looked) == 0 {
			msg = fmt.Sprintf("no port to probe for %s in %s", want, strings.Join(globs, " "))
		}
		if len(busy) > 0 {
			msg += "; not probed: " + strings.Join(busy, ", ")
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, msg)
	}
}
