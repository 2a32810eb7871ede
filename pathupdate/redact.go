package pathupdate

import (
	"errors"
	"net/url"
	"strings"
)

// redactedValue replaces a credential in a URL query.
const redactedValue = "REDACTED"

// credentialParams are the query parameters that carry a credential:
// updatePath puts the access_token in its URL, the classic token endpoint
// the app secret. (A function, not a var: no package-level mutable state.)
func credentialParams() [2]string { return [2]string{"access_token", "secret"} }

// redactURLError rewrites every *url.Error in err's chain so that its URL
// carries access_token=REDACTED and secret=REDACTED instead of the
// credentials. net/http reports every transport failure as a *url.Error
// whose message quotes the whole request URL, so without this an
// access_token reaches logs through the most ordinary timeout. The rest of
// the chain is kept: errors.Is(err, context.Canceled) and the error's
// Timeout() still answer as before.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if ue2, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue2.Op, URL: redactURL(ue2.URL), Err: redactURLError(ue2.Err)}
	}
	// A *url.Error below some other wrapper: the wrapper's message has the
	// URL baked in already, so the only safe rewrite is of the text, and
	// the chain continues at a redacted copy of the *url.Error (the
	// wrappers in between are lost). Our own code never wraps before
	// redacting; this is the belt to those braces.
	return &redactedError{msg: redactString(err.Error()), err: redactURLError(ue)}
}

// redactedError carries a scrubbed message and a scrubbed chain for
// errors.Is/As. Its Error never shows the original text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactURL returns raw with the value of every credential parameter in its
// query replaced by REDACTED. It works on text, not url.Parse, so that an
// unparseable URL (the very thing a url.Error may be about) is scrubbed too
// and the order of the other parameters is kept.
func redactURL(raw string) string {
	q := strings.IndexByte(raw, '?')
	if q < 0 {
		return raw
	}
	head, query := raw[:q+1], raw[q+1:]
	frag := ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		key, _, hasValue := strings.Cut(p, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if hasValue && isCredentialParam(key) {
			parts[i] = key + "=" + redactedValue
		}
	}
	return head + strings.Join(parts, "&") + frag
}

func isCredentialParam(key string) bool {
	for _, c := range credentialParams() {
		if strings.EqualFold(key, c) {
			return true
		}
	}
	return false
}

// redactString scrubs credential parameters in every URL-looking query
// inside free text (an error message that quotes a URL).
func redactString(s string) string {
	var b strings.Builder
	for {
		i := indexCredentialParam(s)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		eq := strings.IndexByte(s[i:], '=') + i
		b.WriteString(s[:eq+1])
		b.WriteString(redactedValue)
		s = s[eq+1:]
		end := strings.IndexAny(s, "&#\" \t\n'")
		if end < 0 {
			return b.String()
		}
		s = s[end:]
	}
}

// indexCredentialParam finds "access_token=" or "secret=" right after '?'
// or '&'.
func indexCredentialParam(s string) int {
	best := -1
	lower := strings.ToLower(s)
	for _, c := range credentialParams() {
		for _, sep := range [...]string{"?", "&"} {
			if j := strings.Index(lower, sep+c+"="); j >= 0 && (best < 0 || j+1 < best) {
				best = j + 1
			}
		}
	}
	return best
}

// scrubSecrets removes the given credentials from text that came from
// outside (an errmsg in a WeChat answer), in case it ever echoes them.
func scrubSecrets(s string, secrets ...Secret) string {
	for _, sec := range secrets {
		if v := sec.Reveal(); v != "" {
			s = strings.ReplaceAll(s, v, redactedText)
		}
	}
	return s
}
