package deadletter

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzFromHeaders feeds arbitrary header values to the parser. It must
// never panic; an error must match ErrMalformed; and a record it accepts
// must come back unchanged from the headers Msg writes for it, every one
// of them a single line without blanks at either end.
// Seeds: testdata/fuzz/FuzzFromHeaders.
func FuzzFromHeaders(f *testing.F) {
	names := []string{
		ReasonHeader, ErrcodeHeader, ErrmsgHeader, AttemptsHeader, OriginalSubjectHeader,
		OriginalSeqHeader, FirstAttemptHeader, LastAttemptHeader, FailedAtHeader, ReplaysHeader,
	}
	f.Fuzz(func(t *testing.T, reason, errcode, errmsg, attempts, subject, seq, first, last, failed, replays string) {
		h := nats.Header{}
		for i, v := range []string{reason, errcode, errmsg, attempts, subject, seq, first, last, failed, replays} {
			if v != "" {
				h.Set(names[i], v)
			}
		}
		r, err := fromHeaders(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not match ErrMalformed: %v", err)
			}
			return
		}
		written := r.headers()
		for name, vs := range written {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) != v {
					t.Fatalf("header %s written as %q", name, v)
				}
			}
		}
		if len(written.Get(ErrmsgHeader)) > MaxErrMsgBytes {
			t.Fatalf("errmsg header is %d bytes", len(written.Get(ErrmsgHeader)))
		}
		again, err := fromHeaders(written)
		if err != nil {
			t.Fatalf("headers written for %+v do not read back: %v", r, err)
		}
		if again.Reason != r.Reason || again.ErrCode != r.ErrCode || again.ErrMsg != r.ErrMsg ||
			again.Attempts != r.Attempts || again.OriginalSubject != r.OriginalSubject ||
			again.OriginalSeq != r.OriginalSeq || !again.FirstAttempt.Equal(r.FirstAttempt) ||
			!again.LastAttempt.Equal(r.LastAttempt) || !again.FailedAt.Equal(r.FailedAt) || again.Replays != r.Replays {
			t.Fatalf("round trip changed the record\n got %+v\nwant %+v", again, r)
		}
	})
}
