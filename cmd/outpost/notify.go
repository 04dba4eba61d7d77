package main

import (
	"net"
	"os"
)

// sdNotify tells systemd the daemon's state (READY=1, STOPPING=1) on
// $NOTIFY_SOCKET, which a Type=notify unit sets: the unit is started
// once the daemon serves, not once it was forked. Without the variable
// (started by hand, another init) it does nothing. The protocol is one
// datagram; an abstract socket, "@name", Go's net package maps itself.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
