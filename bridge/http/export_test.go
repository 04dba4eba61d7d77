package http

// RecoverPanics is recoverPanics for the tests of package http_test.
var RecoverPanics = recoverPanics
