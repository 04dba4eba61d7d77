package http

import (
	"testing"
	"time"
)

// RecoverPanics is recoverPanics for the tests of package http_test.
var RecoverPanics = recoverPanics

// UserRoutes and PublicRoutes are the routes a user token, and no
// token, may call on TCP.
var UserRoutes, PublicRoutes = userRoutes, public

// SetTCPLimits sets the TCP listener's read and idle timeouts and its
// connection cap until the test ends.
func SetTCPLimits(t *testing.T, timeout time.Duration, conns int) {
	rt, it, c := tcpReadTimeout, tcpIdleTimeout, maxTCPConns
	tcpReadTimeout, tcpIdleTimeout, maxTCPConns = timeout, timeout, conns
	t.Cleanup(func() { tcpReadTimeout, tcpIdleTimeout, maxTCPConns = rt, it, c })
}
