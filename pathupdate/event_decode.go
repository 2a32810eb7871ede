package pathupdate

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"unicode/utf8"
)

// DecodeEvent decodes one event and validates it (see Validate).
//
// It accepts one JSON object in the snake_case spelling (token, waybill_id,
// action_time, action_type, action_msg), the cloud-call camelCase spelling
// (token, waybillId, actionTime, actionType, actionMsg) or a mix. Keys match
// exactly (unlike encoding/json, "Token" is not "token"); unknown keys are
// ignored whatever their value. A field given more than once, in one
// spelling or both, must have the same value each time.
//
// The whole input must be valid UTF-8 (RFC 8259) and one JSON object with
// nothing after it but whitespace. Strings must be JSON strings, numbers
// JSON numbers (a null is a wrong type, not a missing field). action_time
// and action_type accept any JSON number that denotes a whole number in
// int64 range, so 1700000000, 1.7e9 and 1700000000.0 are the same; 1.5 is
// rejected. A string of an event field with an escaped lone UTF-16
// surrogate ("\ud800" not followed by a low surrogate, or "\udc00" alone)
// is rejected, as raw invalid UTF-8 is: encoding/json would silently make
// it U+FFFD. Every error is an *InvalidEventError matching
// ErrInvalidEvent, naming every broken field at once.
//
// Cost: input exactly as Encode writes it (what pathupdate's publisher
// stores, and most producers send) is read in one pass (decodeCanonical).
// Anything else takes one utf8.Valid and one json.Valid pass, then one
// scan that copies out the five values; no reflection, no second decode.
func DecodeEvent(data []byte) (Event, error) {
	if ev, ok := decodeCanonical(data); ok {
		return ev, nil
	}
	return decodeEvent(data)
}

// decodeEvent is DecodeEvent for any input.
func decodeEvent(data []byte) (Event, error) {
	if !utf8.Valid(data) {
		return Event{}, invalid("", "not valid UTF-8: bad byte at offset %d", badUTF8Offset(data))
	}
	if !json.Valid(data) {
		var raw json.RawMessage // only to learn what json.Valid disliked
		err := json.Unmarshal(data, &raw)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Event{}, invalid("", "not a JSON object: %v (offset %d)", err, se.Offset)
		}
		return Event{}, invalid("", "not a JSON object: %v", err)
	}
	// From here on data is known to be valid JSON, so the scan below needs
	// no bounds or syntax checks of its own.
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return Event{}, invalid("", "not a JSON object: got %s", JSONKind(data[i]))
	}
	var (
		ev       Event
		seen     [slotCount]bool
		problems [slotCount]*InvalidEventError // the first of each field
	)
	// One copy of the input for every string field: a string value
	// without escapes is a piece of it. A copy each cost two more
	// allocations per event, and every event is decoded for its call.
	src := string(data)
	i = skipSpace(data, i+1)
	for data[i] == '"' {
		keyEnd, esc := scanString(data, i)
		key := data[i+1 : keyEnd-1]
		if esc {
			key = []byte(unquote(data[i:keyEnd]))
		}
		i = skipSpace(data, skipSpace(data, keyEnd)+1) // past the colon
		end := skipValue(data, i)
		if slot, ok := fieldSlot(key); ok && problems[slot] == nil {
			problems[slot] = ev.set(slot, data[i:end], src[i:end], seen[slot])
			seen[slot] = true
		}
		i = skipSpace(data, end)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	for slot, ok := range seen { // every broken field, in wire order
		switch {
		case problems[slot] != nil:
		case !ok:
			problems[slot] = invalid(slotName(slot), "is missing")
		default:
			problems[slot] = ev.check(slot)
		}
	}
	if err := joinProblems(problems[:]); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// Slots of the five fields, in wire order.
const (
	slotToken = iota
	slotWaybillID
	slotActionTime
	slotActionType
	slotActionMsg
	slotCount
)

// fieldSlot maps both spellings of a key to one slot.
func fieldSlot(key []byte) (int, bool) {
	switch string(key) { // no allocation: the compiler compares in place
	case "token":
		return slotToken, true
	case "waybill_id", "waybillId":
		return slotWaybillID, true
	case "action_time", "actionTime":
		return slotActionTime, true
	case "action_type", "actionType":
		return slotActionType, true
	case "action_msg", "actionMsg":
		return slotActionMsg, true
	}
	return 0, false
}

func slotName(slot int) string {
	return [...]string{fieldToken, fieldWaybillID, fieldActionTime, fieldActionType, fieldActionMsg}[slot]
}

// set stores one raw JSON value into its slot (text is raw as a string);
// dup says the slot was already filled, in which case the two values
// must agree.
func (e *Event) set(slot int, raw []byte, text string, dup bool) *InvalidEventError {
	name := slotName(slot)
	var changed bool
	switch slot {
	case slotToken, slotWaybillID, slotActionMsg:
		if raw[0] != '"' {
			return invalid(name, "must be a JSON string, got %s", JSONKind(raw[0]))
		}
		_, esc := scanString(raw, 0)
		if esc && hasLoneSurrogate(raw) {
			// encoding/json would turn it into U+FFFD: an id computed from
			// that no producer in another language could reproduce.
			return invalid(name, "has an escaped lone UTF-16 surrogate (a \\uD800-\\uDFFF escape not in a high-low pair): it stands for no character")
		}
		s := text[1 : len(text)-1]
		if esc {
			s = unquote(raw)
		}
		p := &e.Token
		switch slot {
		case slotWaybillID:
			p = &e.WaybillID
		case slotActionMsg:
			p = &e.ActionMsg
		}
		changed, *p = *p != s, s
	case slotActionTime, slotActionType:
		if c := raw[0]; c != '-' && (c < '0' || c > '9') {
			return invalid(name, "must be a JSON number, got %s", JSONKind(c))
		}
		n, why := parseWholeNumber(raw)
		if slot == slotActionType {
			// n == int64(ActionType(n)): no wrap-around where int is 32 bits.
			if why != "" || n != int64(ActionType(n)) || !ActionType(n).Valid() {
				return invalid(name, "%s %s", clip(raw), actionTypeRule)
			}
			changed, e.ActionType = e.ActionType != ActionType(n), ActionType(n)
		} else {
			if why != "" {
				return invalid(name, "%s %s", clip(raw), why)
			}
			changed, e.ActionTime = e.ActionTime != n, n
		}
	}
	if dup && changed {
		return invalid(name, "is given more than once with different values")
	}
	return nil
}

// parseWholeNumber reads a JSON number (syntax already checked) exactly,
// without going through float64, and accepts it only if it denotes a whole
// number that fits an int64. It returns why not otherwise.
func parseWholeNumber(num []byte) (int64, string) {
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	intEnd := bytes.IndexAny(num, ".eE")
	if intEnd < 0 {
		intEnd = len(num)
	}
	var frac []byte
	rest := num[intEnd:]
	if len(rest) > 0 && rest[0] == '.' {
		fracEnd := bytes.IndexAny(rest, "eE")
		if fracEnd < 0 {
			fracEnd = len(rest)
		}
		frac, rest = rest[1:fracEnd], rest[fracEnd:]
	}
	var exp int64 // clamped: beyond ±1<<40 only "zero", "fraction" or "too big" can follow
	if len(rest) > 0 {
		expNeg := rest[1] == '-'
		for _, c := range rest[1:] {
			if c >= '0' && c <= '9' && exp < 1<<40 {
				exp = exp*10 + int64(c-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	// The value is digits × 10^exp with digits = intPart ++ frac.
	var buf [24]byte
	digits := append(append(buf[:0], num[:intEnd]...), frac...)
	exp -= int64(len(frac))
	digits = bytes.TrimLeft(digits, "0")
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 {
		return 0, ""
	}
	if exp < 0 {
		return 0, "is not a whole number"
	}
	if int64(len(digits))+exp > 19 { // 10^19 > MaxInt64+1
		return 0, "is out of the 64-bit integer range"
	}
	var u uint64 // < 10^19 < 2^64: cannot overflow
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	for ; exp > 0; exp-- {
		u *= 10
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), ""
	case neg && u <= math.MaxInt64+1:
		return int64(-u), "" // two's complement: -(1<<63) comes out right
	}
	return 0, "is out of the 64-bit integer range"
}

// clip keeps an echoed number short in an error message.
func clip(raw []byte) string {
	if len(raw) > 32 {
		return string(raw[:32]) + "..."
	}
	return string(raw)
}

// JSONKind names the kind of the JSON value that starts with byte c ("an
// object", "a string", ...), for error messages that say what was sent
// instead of what was expected.
func JSONKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at data[i]
// (a '"') and whether it holds escapes.
func scanString(data []byte, i int) (end int, esc bool) {
	j := i + 1
	for {
		q := j + bytes.IndexByte(data[j:], '"')
		b := bytes.IndexByte(data[j:q], '\\')
		if b < 0 {
			return q + 1, esc
		}
		esc, j = true, j+b+2 // skip the escaped byte, which may be a '"'
	}
}

// unquote turns a JSON string literal with escapes (rare in events) into
// its value; one without is a piece of the input as it is.
func unquote(lit []byte) string {
	var s string
	_ = json.Unmarshal(lit, &s) // lit is a valid string literal: cannot fail
	return s
}

// hasLoneSurrogate reports whether the JSON string literal lit (syntax
// already checked) holds a \u escape of a UTF-16 surrogate that is not a
// high surrogate followed at once by an escaped low one.
func hasLoneSurrogate(lit []byte) bool {
	for i := 1; i < len(lit)-1; i++ {
		if lit[i] != '\\' {
			continue
		}
		if lit[i+1] != 'u' {
			i++ // a one-letter escape; its letter may be a '\\'
			continue
		}
		r := hex4(lit[i+2 : i+6])
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate with no high one before it
		case r >= 0xD800 && r <= 0xDBFF:
			next := lit[i+6:]
			if len(next) < 6 || next[0] != '\\' || next[1] != 'u' {
				return true
			}
			if lo := hex4(next[2:6]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11 // the pair
		default:
			i += 5
		}
	}
	return false
}

// hex4 reads four hex digits (syntax already checked).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// skipValue returns the index just past the JSON value starting at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		end, _ := scanString(data, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch data[j] {
			case '"':
				j, _ = scanString(data, j)
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i // number, true, false, null
	for ; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return j
}

func badUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// decodeCanonical decodes data when it is a valid event exactly as Encode
// writes it: the five snake_case keys in Encode's order, no whitespace,
// integers without sign, exponent or leading zero, strings holding nothing
// Encode escapes. Such input is valid JSON by construction, so it needs
// neither json.Valid nor the general scan, and Encode(ev) gives data
// back byte for byte. ok false means "not this form or not valid":
// decodeEvent then decides, and explains.
func decodeCanonical(data []byte) (ev Event, ok bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"token":"`))
	if !ok {
		return Event{}, false
	}
	token, rest, ok := cutPlainString(rest, `,"waybill_id":"`)
	if !ok {
		return Event{}, false
	}
	waybill, rest, ok := cutPlainString(rest, `,"action_time":`)
	if !ok {
		return Event{}, false
	}
	at, rest, ok := cutUint(rest, `,"action_type":`)
	if !ok {
		return Event{}, false
	}
	typ, rest, ok := cutUint(rest, `,"action_msg":"`)
	if !ok {
		return Event{}, false
	}
	msg, rest, ok := cutPlainString(rest, `}`)
	if !ok || len(rest) != 0 || !utf8.Valid(data) {
		return Event{}, false
	}
	// One copy for the three strings.
	all := string(data)
	off := func(b []byte) int { return cap(data) - cap(b) } // b is a part of data
	ev = Event{
		Token:      all[off(token) : off(token)+len(token)],
		WaybillID:  all[off(waybill) : off(waybill)+len(waybill)],
		ActionTime: at,
		ActionType: ActionType(typ),
		ActionMsg:  all[off(msg) : off(msg)+len(msg)],
	}
	if ev.Validate() != nil {
		return Event{}, false
	}
	return ev, true
}

// cutPlainString takes a string's content up to its closing quote, which
// must be followed by next. The content must hold nothing Encode escapes
// (control characters, '"', '\\', '<', '>', '&', U+2028, U+2029); its
// UTF-8 is checked by the caller.
func cutPlainString(b []byte, next string) (content, rest []byte, ok bool) {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			rest, ok = bytes.CutPrefix(b[i+1:], []byte(next))
			return b[:i], rest, ok
		case c < 0x20, c == '\\', c == '<', c == '>', c == '&':
			return nil, nil, false
		case c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9):
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// cutUint takes a decimal integer without sign or leading zero that fits
// an int64, which must be followed by next.
func cutUint(b []byte, next string) (n int64, rest []byte, ok bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i > 18 || (b[0] == '0' && i > 1) {
		return 0, nil, false // 18 digits always fit an int64
	}
	for _, c := range b[:i] {
		n = n*10 + int64(c-'0')
	}
	rest, ok = bytes.CutPrefix(b[i:], []byte(next))
	return n, rest, ok
}
