package bridge

import (
	"net/url"
	"regexp"
	"strings"
)

// urlInText finds URLs in an error or log text.
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// secretParams are query parameters that carry credentials.
var secretParams = map[string]bool{
	"token": true, "access_token": true, "auth": true, "auth_token": true, "key": true, "api_key": true, "apikey": true,
	"secret": true, "client_secret": true, "password": true, "pass": true, "pwd": true, "sig": true, "signature": true,
}

// RedactURLs masks the credentials of every URL in s: the password of its
// user information and the values of query parameters such as token, key
// or password. Go's HTTP client quotes the whole URL in its errors, so a
// destination's token would otherwise reach the log and the message
// history, which the CLI, the API and the hub show.
func RedactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			return raw
		}
		changed := false
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			changed = true
		}
		if u.RawQuery != "" {
			q := u.Query()
			for k := range q {
				if secretParams[strings.ToLower(k)] {
					q[k] = []string{"xxxxx"}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
		if !changed {
			return raw
		}
		return u.String()
	})
}

// redactedError is an error whose text has its URLs' credentials masked;
// errors.Is and As still see the error it wraps.
type redactedError struct{ err error }

func (r redactedError) Error() string { return RedactURLs(r.err.Error()) }
func (r redactedError) Unwrap() error { return r.err }

// redactErr masks the credentials in err's text, if there are any.
func redactErr(err error) error {
	if err == nil || RedactURLs(err.Error()) == err.Error() {
		return err
	}
	return redactedError{err}
}
