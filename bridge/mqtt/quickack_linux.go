package mqtt

import "syscall"

// quickAck asks the kernel to acknowledge a client's segments at once
// instead of waiting to send the acknowledgement with the next data.
// Clients that leave Nagle's algorithm on (libmosquitto's default, so
// mosquitto_pub) send the first publish of a burst and hold the rest
// until that segment is acknowledged; the next data Outpost sends is the
// PUBACK, after a commit, so each burst would be split in two commits,
// each a round trip. Linux clears the flag as it goes: it is set again
// after every read.
func quickAck(raw syscall.RawConn) {
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
