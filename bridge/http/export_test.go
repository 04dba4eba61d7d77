package http

// RecoverPanics is recoverPanics for the tests of package http_test.
var RecoverPanics = recoverPanics

// UserRoutes and PublicRoutes are the routes a user token, and no
// token, may call on TCP.
var UserRoutes, PublicRoutes = userRoutes, public
