package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendString holds AppendString to encoding/json, byte for byte, on
// any string: invalid UTF-8, control and HTML characters, U+2028 and
// U+2029 included. The seeds run on every plain `go test`.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", "已揽件 📦", "\x00\x01\x1f\b\f\n\r\t\x7f", `"q" \ /`, "<a&b>", "\u2028\u2029",
		"\xff\xe4\xb8 \ufffd", "\xed\xa0\x80", "end\xe2\x80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Fatalf("AppendString(%q) = %s, json.Marshal = %s", s, got[1:], want)
		}
	})
}
