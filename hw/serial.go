package hw

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"go.bug.st/serial"
)

// OpenSerial returns an opener for a serial device (or a pty) at baud.
func OpenSerial(device string, baud int) func() (io.ReadWriteCloser, error) {
	return func() (io.ReadWriteCloser, error) {
		p, err := serial.Open(device, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("serial %s: %w", device, err)
		}
		return &guardedPort{Port: p}, nil
	}
}

// errPortClosed is a write to a port that was closed.
var errPortClosed = errors.New("serial port closed")

// guardedPort keeps writes off a closed port. go.bug.st/serial writes to
// its file descriptor's number without checking that the port is still
// open, and once it is closed the number soon belongs to another file: a
// write racing the close (the AT engine sending AT+CMGS while the
// supervisor gives up on a hung modem) landed in an API client's socket,
// and could land in the database. A write that has started is let
// finish: the port is closed by Close, or by the last write in flight
// when Close came, so Close never waits on a write a stuck device holds.
type guardedPort struct {
	serial.Port
	mu      sync.Mutex
	closed  bool // Close was called
	shut    bool // the port itself is closed
	writing int  // writes in flight
}

func (p *guardedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, errPortClosed
	}
	p.writing++
	p.mu.Unlock()
	n, err := p.Port.Write(b)
	p.mu.Lock()
	p.writing--
	last := p.closed && p.writing == 0 && !p.shut
	if last {
		p.shut = true
	}
	p.mu.Unlock()
	if last {
		p.Port.Close()
	}
	return n, err
}

func (p *guardedPort) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	now := p.writing == 0
	if now {
		p.shut = true
	}
	p.mu.Unlock()
	if now {
		return p.Port.Close()
	}
	return nil
}
