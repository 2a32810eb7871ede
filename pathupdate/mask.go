package pathupdate

// Phone numbers in logs.
//
// action_msg is free text a courier writes for the buyer, and couriers
// put their own or the recipient's mobile number in it ("派件员 张三
// 13800138000 正在派送"). What goes to WeChat must keep it; what goes to
// logs must not, because logs are shipped, indexed and kept far longer
// and by more people than the events. So every log line, and every error
// string that gets logged, passes text that may come from an event body
// or from WeChat's errmsg (which can echo the request) through MaskPhones
// first. Identifiers (waybill_id in its own log field) are not masked:
// operators need them, and they are not free text.

// phoneMask replaces the middle four digits of a mobile number.
const phoneMask = "****"

// MaskPhones returns s with every mainland China mobile number masked to
// its first three and last four digits: 13800138000 becomes 138****8000.
//
// A mobile number is 11 ASCII digits 1[3-9]xxxxxxxxx, written together or
// grouped 3-4-4 by one space or one hyphen used twice (138 0013 8000
// becomes 138 **** 8000, 138-0013-8000 becomes 138-****-8000), optionally
// behind a country code written as 86 or 0086 right before it
// (+8613800138000 becomes +86138****8000). It must not touch a digit next
// to it: a longer run of digits (an order number, a timestamp) is left as
// it is, so only what reads as a phone number is masked. Full-width digits
// are not recognised.
//
// The result has the same length in bytes as s, every byte other than the
// masked digits is kept (invalid UTF-8 included), and MaskPhones is
// idempotent. s is returned as is, without allocating, when it holds no
// mobile number.
func MaskPhones(s string) string {
	var b []byte // nil until the first mask: most text has no phone number
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// Runs are taken whole, so s[i-1] is not a digit.
		end := digitRunEnd(s, i)
		if mid, ok := phoneAt(s, i, end); ok {
			if b == nil {
				b = []byte(s)
			}
			copy(b[mid:], phoneMask)
		}
		i = end
	}
	if b == nil {
		return s
	}
	return string(b)
}

// phoneAt reports whether the digit run s[start:end] (whole: no digit on
// either side) begins a mobile number, and where its four middle digits
// are.
func phoneAt(s string, start, end int) (mid int, ok bool) {
	switch n := end - start; {
	case n == 11 && mobile(s[start:end]):
		return start + 3, true
	case n == 13 && s[start:start+2] == "86" && mobile(s[start+2:end]):
		return start + 5, true
	case n == 15 && s[start:start+4] == "0086" && mobile(s[start+4:end]):
		return start + 7, true
	case n == 3 && end+10 <= len(s):
		// 3-4-4 with the same separator twice, and no digit after.
		sep := s[end]
		if sep != ' ' && sep != '-' || s[end+5] != sep {
			return 0, false
		}
		g2, g3 := s[end+1:end+5], s[end+6:end+10]
		if !allDigits(g2) || !allDigits(g3) || end+10 < len(s) && isDigit(s[end+10]) {
			return 0, false
		}
		if mobile(s[start:end] + g2 + g3) {
			return end + 1, true
		}
	}
	return 0, false
}

// mobile: 11 digits (already checked by the caller) starting 1[3-9].
func mobile(d string) bool { return len(d) == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRunEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func allDigits(s string) bool { return digitRunEnd(s, 0) == len(s) }

// MaskPhonesError returns an error whose message is err's with MaskPhones
// applied, for logging an error that may quote event content; nil for nil.
// errors.Is and errors.As still see err's chain.
func MaskPhonesError(err error) error {
	if err == nil {
		return nil
	}
	return &maskedError{err: err}
}

type maskedError struct{ err error }

func (e *maskedError) Error() string { return MaskPhones(e.err.Error()) }
func (e *maskedError) Unwrap() error { return e.err }
