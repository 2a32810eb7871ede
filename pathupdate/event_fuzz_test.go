package pathupdate

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeEvent runs the seed corpus in testdata/fuzz/FuzzDecodeEvent on
// every plain `go test`; `go test -fuzz=FuzzDecodeEvent` explores further.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(snake()))
	f.Add([]byte(camel()))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			var ie *InvalidEventError
			if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not an *InvalidEventError matching ErrInvalidEvent", err, err)
			}
			if ev != (Event{}) {
				t.Fatalf("non-zero event %+v returned with error %v", ev, err)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("decoded %+v but Validate() = %v", ev, err)
		}
		// U+FFFD comes out only if it went in (raw, or as \ufffd): never
		// from a lone surrogate escape, which must be refused.
		if strings.ContainsRune(ev.Token+ev.WaybillID+ev.ActionMsg, utf8.RuneError) &&
			!strings.ContainsRune(string(data), utf8.RuneError) && !strings.Contains(strings.ToLower(string(data)), `\ufffd`) {
			t.Fatalf("accepted %q with a U+FFFD the input did not have: %+v", data, ev)
		}
		enc := ev.Encode()
		again, err := DecodeEvent(enc)
		if err != nil {
			t.Fatalf("DecodeEvent(Encode()) = %v for %s", err, enc)
		}
		if again != ev || again.ID() != ev.ID() {
			t.Fatalf("round trip changed the event: %+v (%s) -> %+v (%s)", ev, ev.ID(), again, again.ID())
		}
		agreeWithEncodingJSON(t, data, ev)
	})
}

// agreeWithEncodingJSON checks an accepted input against encoding/json read
// with exact keys (a map): each of our fields, in whichever spelling it was
// given, must hold the value we decoded. This catches mistakes in the
// hand-written scan (string escapes, skipped values, key matching, number
// reading) that a round trip through our own encoder would not.
func agreeWithEncodingJSON(t *testing.T, data []byte, ev Event) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("accepted input that encoding/json rejects (%v): %q", err, data)
	}
	keys := [slotCount][]string{{"token"}, {"waybill_id", "waybillId"}, {"action_time", "actionTime"},
		{"action_type", "actionType"}, {"action_msg", "actionMsg"}}
	for slot, spellings := range keys {
		found := false
		for _, k := range spellings {
			raw, ok := m[k]
			if !ok {
				continue
			}
			found = true
			switch slot {
			case slotToken, slotWaybillID, slotActionMsg:
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("%s: encoding/json: %v", k, err)
				}
				want := [...]string{slotToken: ev.Token, slotWaybillID: ev.WaybillID, slotActionMsg: ev.ActionMsg}[slot]
				if s != want {
					t.Fatalf("%s: encoding/json reads %q, DecodeEvent %q", k, s, want)
				}
			default:
				r, ok := new(big.Rat).SetString(string(raw))
				if !ok {
					t.Fatalf("%s: %s is not a number to math/big", k, raw)
				}
				want := ev.ActionTime
				if slot == slotActionType {
					want = int64(ev.ActionType)
				}
				if !r.IsInt() || r.Num().Int64() != want || !r.Num().IsInt64() {
					t.Fatalf("%s: math/big reads %s, DecodeEvent %d", k, r, want)
				}
			}
		}
		if !found {
			t.Fatalf("accepted input lacks %v: %q", spellings, data)
		}
	}
}

// FuzzEventRoundTrip builds events from arbitrary field values: every one
// that Validate accepts must come back unchanged from DecodeEvent, through
// Encode and through the camelCase spelling as encoding/json writes it.
// This reaches the accepted path far more often than FuzzDecodeEvent can.
func FuzzEventRoundTrip(f *testing.F) {
	e := validEvent()
	f.Add(e.Token, e.WaybillID, e.ActionTime, int64(e.ActionType), e.ActionMsg)
	f.Add("t\"o\\k", "a-_Z9", int64(1), int64(ActionOrderHeldUp), "<&> \u2028 \x00 已揽件 📦")
	f.Fuzz(func(t *testing.T, token, waybill string, at, typ int64, msg string) {
		ev := Event{Token: token, WaybillID: waybill, ActionTime: at, ActionType: ActionType(typ), ActionMsg: msg}
		if err := ev.Validate(); err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Validate() = %v, not ErrInvalidEvent", err)
			}
			if _, derr := DecodeEvent(ev.Encode()); derr == nil && utf8.ValidString(token) && utf8.ValidString(msg) {
				t.Fatalf("Validate rejects %+v (%v) but DecodeEvent accepts its encoding", ev, err)
			}
			return
		}
		camelJSON, _ := json.Marshal(map[string]any{"token": token, "waybillId": waybill,
			"actionTime": at, "actionType": typ, "actionMsg": msg, "other": []string{msg}})
		for _, in := range [][]byte{ev.Encode(), camelJSON} {
			got, err := DecodeEvent(in)
			if err != nil {
				t.Fatalf("DecodeEvent(%s) = %v for a valid event", in, err)
			}
			if got != ev || got.ID() != ev.ID() {
				t.Fatalf("DecodeEvent(%s) = %+v, want %+v", in, got, ev)
			}
		}
	})
}

// The seed corpus files are named valid_* or invalid_*; hold them to it so
// the corpus keeps covering both sides.
func TestFuzzSeedCorpusNames(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/fuzz/FuzzDecodeEvent/*")
	if err != nil || len(files) < 15 {
		t.Fatalf("seed corpus: %d files, %v; want at least 15", len(files), err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(strings.TrimSpace(lit), ")")
		data, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a one-[]byte corpus file (%v)", file, err)
		}
		_, err = DecodeEvent([]byte(data))
		switch name := filepath.Base(file); {
		case strings.HasPrefix(name, "valid_") && err != nil:
			t.Errorf("%s: %v", name, err)
		case strings.HasPrefix(name, "invalid_") && err == nil:
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// FuzzDecodeCanonical: whatever decodeCanonical (DecodeEvent's one-pass
// reading of Encode's own form) accepts, the general decoder decodes to
// the same event, and Encode gives the input back byte for byte.
func FuzzDecodeCanonical(f *testing.F) {
	e := validEvent()
	f.Add(e.Encode())
	for _, s := range []string{
		`{"token":"t","waybill_id":"W1","action_time":1700000000,"action_type":100001,"action_msg":"已揽件 📦"}`,
		`{"token":"t","waybill_id":"W1","action_time":01700000000,"action_type":100001,"action_msg":"m"}`,
		`{"token":"t","waybill_id":"W1","action_time":1.7e9,"action_type":100001,"action_msg":"m"}`,
		`{"token":"t\"","waybill_id":"W1","action_time":1,"action_type":100001,"action_msg":"a<b"}`,
		`{"token":"t","waybill_id":"W1","action_time":1,"action_type":100001,"action_msg":"m"} `,
		`{"token":"t","waybill_id":"W1","action_time":1,"action_type":100001,"action_msg":"\u00e9"}`,
		`{"token":"t","waybill_id":"W1","action_time":1,"action_type":100001,"action_msg":"\xff"}`,
		`{"token":"t","waybill_id":"W1","action_time":999999999999999999,"action_type":100001,"action_msg":"m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, ok := decodeCanonical(in)
		if !ok {
			return
		}
		slow, err := decodeEvent(in)
		if err != nil || slow != ev {
			t.Fatalf("decodeCanonical(%q) = %+v, decodeEvent = %+v, %v", in, ev, slow, err)
		}
		if got := ev.Encode(); !bytes.Equal(got, in) {
			t.Fatalf("Encode of the canonical decoding of %q is %q", in, got)
		}
	})
}

// FuzzEncode holds the hand-written Encode to json.Marshal, byte for
// byte, on any field values, valid events or not (its strings are
// jsonenc's, fuzzed there on their own).
func FuzzEncode(f *testing.F) {
	f.Add("SECRETtok-0123456789", "SF1234567890", int64(1700000000), int64(100001), "picked up in Shenzhen")
	f.Add("tok \x00\b\n\x7f", "<a&b>", int64(-1), int64(0), "\u2028 \"q\" \\ 中 \xff\xe4\xb8 📦")
	f.Fuzz(func(t *testing.T, token, waybill string, at, typ int64, msg string) {
		ev := Event{Token: token, WaybillID: waybill, ActionTime: at, ActionType: ActionType(typ), ActionMsg: msg}
		type wire Event
		want, err := json.Marshal(wire(ev))
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.Encode(); !bytes.Equal(got, want) {
			t.Fatalf("Encode() = %s\njson.Marshal = %s", got, want)
		}
	})
}

// TestDecodeCanonical: Encode's own output takes the one-pass reading;
// anything else the general decoder reads (or refuses) as before.
func TestDecodeCanonical(t *testing.T) {
	t.Parallel()
	chinese := validEvent()
	chinese.ActionMsg = "快件已到达 深圳转运中心 📦"
	escaped := validEvent()
	escaped.ActionMsg = "a<b & \"c\""
	for _, tt := range []struct {
		in        string
		canonical bool
		valid     bool
	}{
		{string(validEvent().Encode()), true, true},
		{string(chinese.Encode()), true, true},
		{string(escaped.Encode()), false, true},
		{strings.Replace(string(validEvent().Encode()), `"action_time":`, `"action_time":0`, 1), false, false},
		{strings.Replace(string(validEvent().Encode()), `{"token"`, `{ "token"`, 1), false, true},
		{string(validEvent().Encode()) + " ", false, true},
		{strings.Replace(string(validEvent().Encode()), `"waybill_id"`, `"waybillId"`, 1), false, true},
	} {
		ev, ok := decodeCanonical([]byte(tt.in))
		if ok != tt.canonical {
			t.Errorf("decodeCanonical(%s): ok %v, want %v", tt.in, ok, tt.canonical)
		}
		got, err := DecodeEvent([]byte(tt.in))
		if (err == nil) != tt.valid {
			t.Errorf("DecodeEvent(%s): %v, want valid %v", tt.in, err, tt.valid)
		}
		if ok && got != ev {
			t.Errorf("DecodeEvent(%s) = %+v, canonical reading %+v", tt.in, got, ev)
		}
	}
}
