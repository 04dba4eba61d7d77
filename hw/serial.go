package hw

import (
	"fmt"
	"io"

	"go.bug.st/serial"
)

// OpenSerial returns an opener for a serial device (or a pty) at baud.
func OpenSerial(device string, baud int) func() (io.ReadWriteCloser, error) {
	return func() (io.ReadWriteCloser, error) {
		p, err := serial.Open(device, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("serial %s: %w", device, err)
		}
		return p, nil
	}
}
