//go:build !linux

package mqtt

import "syscall"

// quickAck is Linux's (see quickack_linux.go).
func quickAck(syscall.RawConn) {}
