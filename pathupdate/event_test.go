package pathupdate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// testToken is recognisable so tests can assert it never shows in an error.
const testToken = "SECRETtok-0123456789"

func validEvent() Event {
	return Event{
		Token:      testToken,
		WaybillID:  "SF1234567890",
		ActionTime: 1700000000,
		ActionType: ActionPickedUp,
		ActionMsg:  "picked up in Shenzhen",
	}
}

// body builds a JSON object from key/raw-value pairs, in the given order.
func body(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", kv[i], kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func q(s string) string { b, _ := json.Marshal(s); return string(b) }

// snake and camel are a valid event in each spelling, with the raw value of
// one field replaced when the key is given in over (key, raw value pairs).
func snake(over ...string) string { return withFields(false, over...) }
func camel(over ...string) string { return withFields(true, over...) }

func withFields(camelCase bool, over ...string) string {
	keys := []string{"token", "waybill_id", "action_time", "action_type", "action_msg"}
	if camelCase {
		keys = []string{"token", "waybillId", "actionTime", "actionType", "actionMsg"}
	}
	e := validEvent()
	vals := []string{q(e.Token), q(e.WaybillID), "1700000000", "100001", q(e.ActionMsg)}
	var kv []string
	for i, k := range keys {
		v, drop := vals[i], false
		for j := 0; j < len(over); j += 2 {
			if over[j] == k {
				v, drop = over[j+1], over[j+1] == "DROP"
			}
		}
		if !drop {
			kv = append(kv, k, v)
		}
	}
	return body(kv...)
}

func TestDecodeEventAccepts(t *testing.T) {
	t.Parallel()
	base := validEvent()
	with := func(f func(*Event)) Event { e := base; f(&e); return e }
	cjk := strings.Repeat("中", MaxActionMsgLen)
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{"snake", snake(), base},
		{"camel", camel(), base},
		{"mixed spelling", body("actionMsg", q(base.ActionMsg), "waybill_id", q(base.WaybillID),
			"token", q(testToken), "actionType", "100001", "action_time", "1700000000"), base},
		{"both spellings agree", snake()[:len(snake())-1] + `,"waybillId":"SF1234567890","actionTime":17e8}`, base},
		{"same key twice agreeing", snake()[:len(snake())-1] + `,"token":` + q(testToken) + `}`, base},
		{"unknown fields ignored", body("x", `{"token":1,"a":[1,"}]",{"b":null}]}`, "token", q(testToken),
			"waybill_id", q(base.WaybillID), "extra", `"\"}"`, "action_time", "1700000000",
			"n", "-1.5e-3", "action_type", "100001", "t", "true", "action_msg", q(base.ActionMsg), "z", "null"), base},
		{"keys match exactly, Token is unknown", snake()[:len(snake())-1] + `,"Token":1,"WAYBILL_ID":[]}`, base},
		{"escaped key", strings.Replace(snake(), `"token"`, `"tok\u0065n"`, 1), base},
		{"whitespace everywhere", " \t\r\n" + strings.ReplaceAll(snake(), ",", " ,\n\t") + "\n ", base},
		{"unicode msg", snake("action_msg", q("已揽件 📦 Ünïcödé")), with(func(e *Event) { e.ActionMsg = "已揽件 📦 Ünïcödé" })},
		{"escaped unicode msg", snake("action_msg", `"\u5df2\u63fd\u4ef6 \ud83d\udce6"`), with(func(e *Event) { e.ActionMsg = "已揽件 📦" })},
		{"escapes", snake("action_msg", `"a\"b\\c\/d\n\t<&>"`), with(func(e *Event) { e.ActionMsg = "a\"b\\c/d\n\t<&>" })},
		{"msg of max characters", snake("action_msg", q(cjk)), with(func(e *Event) { e.ActionMsg = cjk })},
		{"token of 256", snake("token", q(strings.Repeat("t", 256))), with(func(e *Event) { e.Token = strings.Repeat("t", 256) })},
		{"waybill of 64", snake("waybill_id", q(strings.Repeat("W", 64))), with(func(e *Event) { e.WaybillID = strings.Repeat("W", 64) })},
		{"waybill alphabet", snake("waybill_id", `"azAZ09-_"`), with(func(e *Event) { e.WaybillID = "azAZ09-_" })},
		{"time 1.7e9", snake("action_time", "1.7e9"), base},
		{"time 1.7E+9", snake("action_time", "1.7E+9"), base},
		{"time with zero fraction", snake("action_time", "1700000000.000"), base},
		{"time 17000000000e-1", snake("action_time", "17000000000e-1"), base},
		{"time 1", snake("action_time", "1"), with(func(e *Event) { e.ActionTime = 1 })},
		{"time max int64", snake("action_time", "9223372036854775807"), with(func(e *Event) { e.ActionTime = 1<<63 - 1 })},
		{"type 100001.0", snake("action_type", "100001.0"), base},
		{"type 1.00001e5", snake("action_type", "1.00001e5"), base},
		{"type 400002", camel("actionType", "400002"), with(func(e *Event) { e.ActionType = ActionOrderHeldUp })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEvent([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("DecodeEvent(%s)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeEventRejects(t *testing.T) {
	t.Parallel()
	valid := snake()
	tests := []struct {
		name  string
		in    string
		field string
		rule  string // the whole Rule, or its prefix when it ends in "..."
	}{
		// Not an object at all.
		{"empty input", "", "", "not a JSON object: unexpected end of JSON input..."},
		{"whitespace only", " \n", "", "not a JSON object: unexpected end of JSON input..."},
		{"array", "[" + valid + "]", "", "not a JSON object: got an array"},
		{"string", `"x"`, "", "not a JSON object: got a string"},
		{"number", "1", "", "not a JSON object: got a number"},
		{"null", "null", "", "not a JSON object: got null"},
		{"boolean", "true", "", "not a JSON object: got a boolean"},
		{"trailing garbage", valid + " x", "", "not a JSON object: invalid character 'x' after top-level value..."},
		{"two objects", valid + valid, "", "not a JSON object: invalid character '{' after top-level value..."},
		{"truncated", valid[:len(valid)-1], "", "not a JSON object: unexpected end of JSON input..."},
		{"trailing comma", valid[:len(valid)-1] + ",}", "", "not a JSON object: invalid character '}'..."},
		{"byte order mark", "\ufeff" + valid, "", "not a JSON object: invalid character 'ï'..."},
		{"single quotes", `{'token':'x'}`, "", "not a JSON object: invalid character '\\''..."},
		{"invalid UTF-8 in msg", snake("action_msg", "\"ok \xff\xfe\""), "", "not valid UTF-8: bad byte at offset ..."},
		{"invalid UTF-8 in unknown field", valid[:len(valid)-1] + ",\"x\":\"\xc3\"}", "", "not valid UTF-8: bad byte at offset ..."},

		// Escaped lone UTF-16 surrogates: encoding/json would make them
		// U+FFFD, an id no other language reproduces (docs/event-id.md).
		{"lone high surrogate in msg", snake("action_msg", `"a\ud800b"`), "action_msg", loneSurrogate},
		{"lone low surrogate in token", snake("token", `"SECRET\uDC00"`), "token", loneSurrogate},
		{"high surrogate then a letter escape", camel("waybillId", `"\ud83d\u0041"`), "waybill_id", loneSurrogate},
		{"high surrogate at the end", snake("action_msg", `"x\uD83D"`), "action_msg", loneSurrogate},
		{"two high surrogates", snake("action_msg", `"\ud83d\ud83d\udce6"`), "action_msg", loneSurrogate},
		{"escaped backslash before u", snake("action_msg", `"\\\ud800"`), "action_msg", loneSurrogate},

		// Missing fields, in both spellings.
		{"missing token", snake("token", "DROP"), "token", "is missing"},
		{"missing waybill_id", snake("waybill_id", "DROP"), "waybill_id", "is missing"},
		{"missing actionTime", camel("actionTime", "DROP"), "action_time", "is missing"},
		{"missing actionType", camel("actionType", "DROP"), "action_type", "is missing"},
		{"missing action_msg", snake("action_msg", "DROP"), "action_msg", "is missing"},
		{"upper-case key is not the field", strings.Replace(valid, `"token"`, `"Token"`, 1), "token", "is missing"},

		// Wrong JSON types.
		{"token number", snake("token", "12345"), "token", "must be a JSON string, got a number"},
		{"token null", snake("token", "null"), "token", "must be a JSON string, got null"},
		{"waybill number", camel("waybillId", "1234"), "waybill_id", "must be a JSON string, got a number"},
		{"msg object", snake("action_msg", `{"a":1}`), "action_msg", "must be a JSON string, got an object"},
		{"msg array", camel("actionMsg", `["a"]`), "action_msg", "must be a JSON string, got an array"},
		{"time string", snake("action_time", `"1700000000"`), "action_time", "must be a JSON number, got a string"},
		{"time null", camel("actionTime", "null"), "action_time", "must be a JSON number, got null"},
		{"type boolean", snake("action_type", "true"), "action_type", "must be a JSON number, got a boolean"},
		{"type string", camel("actionType", `"100001"`), "action_type", "must be a JSON number, got a string"},

		// Conflicting duplicates.
		{"spellings disagree on waybill", valid[:len(valid)-1] + `,"waybillId":"OTHER"}`, "waybill_id", "is given more than once with different values"},
		{"spellings disagree on time", valid[:len(valid)-1] + `,"actionTime":1700000001}`, "action_time", "is given more than once with different values"},
		{"spellings disagree on type", valid[:len(valid)-1] + `,"actionType":100002}`, "action_type", "is given more than once with different values"},
		{"spellings disagree on msg", valid[:len(valid)-1] + `,"actionMsg":"other"}`, "action_msg", "is given more than once with different values"},
		{"token twice, different", valid[:len(valid)-1] + `,"token":"SECRETother"}`, "token", "is given more than once with different values"},
		{"same key twice, different", valid[:len(valid)-1] + `,"action_msg":"other"}`, "action_msg", "is given more than once with different values"},
		{"duplicate of a wrong type", valid[:len(valid)-1] + `,"actionTime":"x"}`, "action_time", "must be a JSON number, got a string"},

		// Field rules.
		{"token empty", snake("token", `""`), "token", "is empty"},
		{"token of 257", snake("token", q(strings.Repeat("S", 257))), "token", "is 257 characters long, more than 256"},
		{"waybill empty", snake("waybill_id", `""`), "waybill_id", "is empty"},
		{"waybill of 65", snake("waybill_id", q(strings.Repeat("W", 65))), "waybill_id", "is 65 characters long, more than 64"},
		{"waybill dot", snake("waybill_id", `"a.b"`), "waybill_id", `"a.b" has a character outside A-Z a-z 0-9 - _`},
		{"waybill space", snake("waybill_id", `"a b"`), "waybill_id", `"a b" has a character outside A-Z a-z 0-9 - _`},
		{"waybill wildcard", camel("waybillId", `">"`), "waybill_id", `">" has a character outside A-Z a-z 0-9 - _`},
		{"waybill non-ASCII", snake("waybill_id", `"运单1"`), "waybill_id", `"运单1" has a character outside A-Z a-z 0-9 - _`},
		{"waybill escaped newline", snake("waybill_id", `"a\nb"`), "waybill_id", `"a\nb" has a character outside A-Z a-z 0-9 - _`},
		{"time zero", snake("action_time", "0"), "action_time", "0 is not positive (Unix seconds, > 0)"},
		{"time minus zero", snake("action_time", "-0"), "action_time", "0 is not positive (Unix seconds, > 0)"},
		{"time negative", snake("action_time", "-5"), "action_time", "-5 is not positive (Unix seconds, > 0)"},
		{"time 1.5", snake("action_time", "1.5"), "action_time", "1.5 is not a whole number"},
		{"time 1e-3", snake("action_time", "1e-3"), "action_time", "1e-3 is not a whole number"},
		{"time 0.5", snake("action_time", "0.5"), "action_time", "0.5 is not a whole number"},
		{"time 2^63", snake("action_time", "9223372036854775808"), "action_time", "9223372036854775808 is out of the 64-bit integer range"},
		{"time 1e19", snake("action_time", "1e19"), "action_time", "1e19 is out of the 64-bit integer range"},
		{"time 1e999999999999", snake("action_time", "1e999999999999"), "action_time", "1e999999999999 is out of the 64-bit integer range"},
		{"time long number clipped", snake("action_time", strings.Repeat("9", 40)), "action_time", strings.Repeat("9", 32) + "... is out of the 64-bit integer range"},
		{"type unknown", snake("action_type", "300001"), "action_type", "300001 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{"type zero", snake("action_type", "0"), "action_type", "0 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{"type fraction", snake("action_type", "100001.5"), "action_type", "100001.5 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{"type wraps 32 bits", snake("action_type", "4295067297"), "action_type", "4295067297 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{"type huge", snake("action_type", "1e300"), "action_type", "1e300 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{"msg empty", snake("action_msg", `""`), "action_msg", "is empty"},
		{"msg too long", snake("action_msg", q(strings.Repeat("长", MaxActionMsgLen+1))), "action_msg", "is 1025 characters long, more than 1024"},
		{"msg huge", snake("action_msg", q(strings.Repeat("x", 1<<20))), "action_msg", "is 1048576 characters long, more than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEvent([]byte(tt.in))
			assertInvalid(t, err, tt.field, tt.rule)
			if got != (Event{}) {
				t.Errorf("DecodeEvent returned %+v with its error, want the zero Event", got)
			}
		})
	}
}

// An event that breaks several rules is refused with all of them at
// once, in wire order, so that a producer fixes it in one round.
func TestDecodeEventReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []InvalidEventError
	}{
		{"empty object", "{}", []InvalidEventError{
			{Field: "token", Rule: "is missing"}, {Field: "waybill_id", Rule: "is missing"},
			{Field: "action_time", Rule: "is missing"}, {Field: "action_type", Rule: "is missing"},
			{Field: "action_msg", Rule: "is missing"},
		}},
		{"token missing and action type unknown", `{"waybill_id":"W1","action_time":1,"action_type":999,"action_msg":"m"}`, []InvalidEventError{
			{Field: "token", Rule: "is missing"},
			{Field: "action_type", Rule: "999 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		}},
		{"wrong type, bad waybill, duplicate", `{"token":1,"waybillId":"a.b","action_time":"1","action_type":100001,"action_msg":"m","actionMsg":"n"}`, []InvalidEventError{
			{Field: "token", Rule: "must be a JSON string, got a number"},
			{Field: "waybill_id", Rule: `"a.b" has a character outside A-Z a-z 0-9 - _`},
			{Field: "action_time", Rule: "must be a JSON number, got a string"},
			{Field: "action_msg", Rule: "is given more than once with different values"},
		}},
		{"the first problem of a field counts", `{"token":"SECRET","waybill_id":"W","action_time":"x","actionTime":0,"action_type":100001,"action_msg":"m"}`, []InvalidEventError{
			{Field: "action_time", Rule: "must be a JSON number, got a string"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeEvent([]byte(tt.in))
			var ie *InvalidEventError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error %v, want an *InvalidEventError", err)
			}
			got := ie.Problems()
			if len(got) != len(tt.want) {
				t.Fatalf("problems %+v, want %+v", got, tt.want)
			}
			var text []string
			for i := range got {
				if got[i].Field != tt.want[i].Field || got[i].Rule != tt.want[i].Rule || got[i].More != nil {
					t.Errorf("problem %d = %+v, want %+v", i, got[i], tt.want[i])
				}
				text = append(text, got[i].Field+" "+got[i].Rule)
			}
			if want := "invalid event: " + strings.Join(text, "; "); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if ie.Field != tt.want[0].Field || ie.Rule != tt.want[0].Rule {
				t.Errorf("Field, Rule = %q, %q: want the first problem", ie.Field, ie.Rule)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error text reveals a token: %q", err.Error())
			}
		})
	}
}

const loneSurrogate = "has an escaped lone UTF-16 surrogate (a \\uD800-\\uDFFF escape not in a high-low pair): it stands for no character"

// Escapes that only look like surrogates, and real pairs, are accepted.
func TestDecodeEventAcceptsSurrogatePairs(t *testing.T) {
	t.Parallel()
	valid := snake()
	for _, msg := range []string{`"\ud83d\udce6"`, `"\uD83D\uDCE6 ok"`, `"\\ud800"`, `"\ufffd"`, `"a\\\\ud800"`} {
		ev, err := DecodeEvent([]byte(snake("action_msg", msg)))
		if err != nil {
			t.Errorf("action_msg %s: %v", msg, err)
			continue
		}
		var want string
		_ = json.Unmarshal([]byte(msg), &want)
		if ev.ActionMsg != want {
			t.Errorf("action_msg %s decoded %q, want %q", msg, ev.ActionMsg, want)
		}
	}
	if _, err := DecodeEvent([]byte(valid)); err != nil {
		t.Fatal(err)
	}
}

// assertInvalid checks the error contract: errors.Is, errors.As, Field,
// Rule, the Error() text, and that the test token never appears.
func assertInvalid(t *testing.T, err error, field, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %s", field, rule)
	}
	if !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("errors.Is(%v, ErrInvalidEvent) = false", err)
	}
	var ie *InvalidEventError
	if !errors.As(err, &ie) {
		t.Fatalf("error %T %v is not an *InvalidEventError", err, err)
	}
	if ie.Field != field {
		t.Errorf("Field = %q, want %q (error: %v)", ie.Field, field, err)
	}
	if prefix, ok := strings.CutSuffix(rule, "..."); ok {
		if !strings.HasPrefix(ie.Rule, prefix) {
			t.Errorf("Rule = %q, want prefix %q", ie.Rule, prefix)
		}
	} else if ie.Rule != rule {
		t.Errorf("Rule = %q, want %q", ie.Rule, rule)
	}
	want := "invalid event: " + ie.Rule
	if field != "" {
		want = "invalid event: " + field + " " + ie.Rule
	}
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error text reveals a token: %q", err.Error())
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	with := func(f func(*Event)) Event { e := validEvent(); f(&e); return e }
	tests := []struct {
		name string
		ev   Event
		want string // the whole Error(); "" for valid
	}{
		{"valid", validEvent(), ""},
		{"every action type", with(func(e *Event) { e.ActionType = ActionSignFailed }), ""},
		{"zero event", Event{}, "invalid event: token is empty; waybill_id is empty; action_time 0 is not positive (Unix seconds, > 0); action_type 0 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002; action_msg is empty"},
		{"token empty", with(func(e *Event) { e.Token = "" }), "invalid event: token is empty"},
		{"token 256", with(func(e *Event) { e.Token = strings.Repeat("S", 256) }), ""},
		{"token 257", with(func(e *Event) { e.Token = strings.Repeat("S", 257) }), "invalid event: token is 257 characters long, more than 256"},
		{"token 256 runes of 3 bytes", with(func(e *Event) { e.Token = strings.Repeat("令", 256) }), ""},
		{"token invalid UTF-8", with(func(e *Event) { e.Token = "SECRET\xff" }), "invalid event: token is not valid UTF-8 (7 bytes)"},
		{"waybill empty", with(func(e *Event) { e.WaybillID = "" }), "invalid event: waybill_id is empty"},
		{"waybill 64", with(func(e *Event) { e.WaybillID = strings.Repeat("w", 64) }), ""},
		{"waybill 65", with(func(e *Event) { e.WaybillID = strings.Repeat("w", 65) }), "invalid event: waybill_id is 65 characters long, more than 64"},
		{"waybill dot", with(func(e *Event) { e.WaybillID = "a.b" }), `invalid event: waybill_id "a.b" has a character outside A-Z a-z 0-9 - _`},
		{"waybill star", with(func(e *Event) { e.WaybillID = "a*" }), `invalid event: waybill_id "a*" has a character outside A-Z a-z 0-9 - _`},
		{"waybill invalid UTF-8", with(func(e *Event) { e.WaybillID = "a\xff" }), `invalid event: waybill_id "a\xff" has a character outside A-Z a-z 0-9 - _`},
		{"time zero", with(func(e *Event) { e.ActionTime = 0 }), "invalid event: action_time 0 is not positive (Unix seconds, > 0)"},
		{"time negative", with(func(e *Event) { e.ActionTime = -1 }), "invalid event: action_time -1 is not positive (Unix seconds, > 0)"},
		{"type unknown", with(func(e *Event) { e.ActionType = 300001 }), "invalid event: action_type 300001 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002"},
		{"msg empty", with(func(e *Event) { e.ActionMsg = "" }), "invalid event: action_msg is empty"},
		{"msg 1024 emoji", with(func(e *Event) { e.ActionMsg = strings.Repeat("📦", 1024) }), ""},
		{"msg 1025", with(func(e *Event) { e.ActionMsg = strings.Repeat("x", 1025) }), "invalid event: action_msg is 1025 characters long, more than 1024"},
		{"msg invalid UTF-8", with(func(e *Event) { e.ActionMsg = "ab\xc3" }), "invalid event: action_msg is not valid UTF-8 (3 bytes)"},
		{"every problem, in wire order", Event{WaybillID: "a.b", ActionMsg: ""}, `invalid event: token is empty; waybill_id "a.b" has a character outside A-Z a-z 0-9 - _; action_time 0 is not positive (Unix seconds, > 0); action_type 0 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002; action_msg is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.ev.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			var ie *InvalidEventError
			if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &ie) {
				t.Errorf("%v does not match ErrInvalidEvent and *InvalidEventError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("Validate() = %q, want %q", err.Error(), tt.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error text reveals a token: %q", err.Error())
			}
		})
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	got := string(validEvent().Encode())
	want := `{"token":"SECRETtok-0123456789","waybill_id":"SF1234567890","action_time":1700000000,"action_type":100001,"action_msg":"picked up in Shenzhen"}`
	if got != want {
		t.Fatalf("Encode()\n got %s\nwant %s", got, want)
	}
	e := validEvent()
	e.ActionMsg = "<a&b> \u2028 \"q\" \\ 中"
	if got, want := string(e.Encode()), `"action_msg":"\u003ca\u0026b\u003e \u2028 \"q\" \\ 中"`; !strings.Contains(got, want) {
		t.Errorf("Encode() = %s, want it to contain %s (encoding/json escaping)", got, want)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	msgs := []string{
		"picked up", "已揽件 📦", "<html>&amp;", "quote \" backslash \\ slash /",
		"ctrl \x00\x01\x1f\t\n\r\b\f", "\u2028\u2029", "\ufffd", strings.Repeat("长", MaxActionMsgLen),
	}
	for _, m := range msgs {
		e := validEvent()
		e.ActionMsg = m
		e.Token = "tok " + m // tokens are only length-limited
		if len(e.Token) > MaxTokenLen {
			e.Token = e.Token[:4]
		}
		for _, at := range []ActionType{ActionPickedUp, ActionOrderHeldUp} {
			e.ActionType = at
			enc := e.Encode()
			if asJSON, _ := json.Marshal(e); !bytes.Equal(asJSON, enc) {
				t.Errorf("json.Marshal = %s, Encode = %s: they must agree", asJSON, enc)
			}
			got, err := DecodeEvent(enc)
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", enc, err)
			}
			if got != e {
				t.Fatalf("round trip of %q: got %+v want %+v", m, got, e)
			}
		}
	}
}

func TestActionType(t *testing.T) {
	t.Parallel()
	all := map[ActionType]string{
		ActionPickedUp: "picked_up", ActionPickUpFailed: "pick_up_failed",
		ActionCourierAssigned: "courier_assigned", ActionInTransit: "in_transit",
		ActionOutForDelivery: "out_for_delivery", ActionSigned: "signed",
		ActionSignFailed: "sign_failed", ActionOrderCancelled: "order_cancelled",
		ActionOrderHeldUp: "order_held_up",
	}
	for at, name := range all {
		if !at.Valid() || at.String() != name {
			t.Errorf("%d: Valid()=%v String()=%q, want true %q", int(at), at.Valid(), at.String(), name)
		}
	}
	for _, at := range []ActionType{0, -1, 100000, 100004, 200002, 300001, 300005, 400003, 1 << 40} {
		if at.Valid() {
			t.Errorf("%d.Valid() = true", int(at))
		}
		if want := fmt.Sprintf("action_type(%d)", int(at)); at.String() != want {
			t.Errorf("String() = %q, want %q", at.String(), want)
		}
	}
}

// The golden ids are the ones docs/event-id.md lists and checks with
// sha256sum; they must never change (publishers in other languages and
// messages already in a stream's duplicate window depend on them).
func TestEventIDGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Token: "T0KEN-abc", WaybillID: "SF1234567890", ActionTime: 1700000000, ActionType: ActionPickedUp, ActionMsg: "picked up"}, "pu1-c92423264147f115b1694d0046ecd55e"},
		{Event{Token: "tok", WaybillID: "W_2-b", ActionTime: 1, ActionType: ActionOrderHeldUp, ActionMsg: "已揽件 📦"}, "pu1-bcdd37b1e5687480716a437296da7918"},
		{Event{Token: strings.Repeat("x", 256), WaybillID: "JD0001", ActionTime: 1712345678, ActionType: ActionSigned, ActionMsg: "signed\nat door"}, "pu1-1a8856122da8a7b3af9f456fe770b890"},
	}
	for _, tt := range tests {
		if got := tt.ev.ID(); got != tt.want {
			t.Errorf("%+v.ID() = %s, want %s", tt.ev, got, tt.want)
		}
	}
}

func TestEventIDProperties(t *testing.T) {
	t.Parallel()
	base := validEvent()
	id := base.ID()
	if !regexp.MustCompile(`^pu1-[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("ID() = %q, want pu1- and 32 lowercase hex digits", id)
	}
	// Same content in either spelling: same id.
	for _, in := range []string{snake(), camel(), snake("action_time", "1.7e9")} {
		ev, err := DecodeEvent([]byte(in))
		if err != nil || ev.ID() != id {
			t.Errorf("DecodeEvent(%s).ID() = %s, %v; want %s", in, ev.ID(), err, id)
		}
	}
	changes := map[string]func(*Event){
		"token":       func(e *Event) { e.Token += "x" },
		"waybill_id":  func(e *Event) { e.WaybillID += "x" },
		"action_time": func(e *Event) { e.ActionTime++ },
		"action_type": func(e *Event) { e.ActionType = ActionPickUpFailed },
		"action_msg":  func(e *Event) { e.ActionMsg += "x" },
		// The token's length prefix keeps the token/msg boundary apart.
		"token/msg boundary": func(e *Event) { e.Token, e.ActionMsg = e.Token+"p", e.ActionMsg[1:] },
		"msg case":           func(e *Event) { e.ActionMsg = strings.ToUpper(e.ActionMsg) },
	}
	seen := map[string]string{id: "base"}
	for name, change := range changes {
		e := base
		change(&e)
		if e == base {
			t.Fatalf("%s: change did not change the event", name)
		}
		got := e.ID()
		if prev, dup := seen[got]; dup {
			t.Errorf("changing %s gives id %s, same as %s", name, got, prev)
		}
		seen[got] = name
		if e.ID() != got {
			t.Errorf("%s: ID() not stable across calls", name)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	for _, in := range []struct{ name, body string }{
		{"snake", snake()},
		{"camel", camel()},
		{"unicode_escapes", snake("action_msg", `"\u5df2\u63fd\u4ef6 \u6df1\u5733"`)},
	} {
		data := []byte(in.body)
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := DecodeEvent(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// For comparison: encoding/json into the struct, which neither knows
	// the camelCase spelling nor validates anything.
	b.Run("reference_json_unmarshal", func(b *testing.B) {
		data := []byte(snake())
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var e Event
			if err := json.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEventID(b *testing.B) {
	e := validEvent()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.ID()
	}
}
