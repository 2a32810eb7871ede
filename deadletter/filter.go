package deadletter

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Filter selects dead letters. The zero Filter selects every one; set
// fields combine with AND.
type Filter struct {
	// Waybill selects one waybill's dead letters (a subject filter: the
	// server sends nothing else), or, as InvalidWaybill, those without a
	// valid waybill id wherever they are stored (the whole stream is read).
	Waybill string
	// ErrCode, when not nil, selects records with that errcode (0: none).
	ErrCode *int
	// Reason selects one reason (ReasonRejected, ...). Any value is
	// accepted, so a newer writer's reason can be selected too.
	Reason string
	// Since selects records whose FailedAt is at or after it. The server
	// starts reading at Since minus SinceSlack (the stream's own clock), so
	// only that stretch of the stream is read.
	Since time.Time
	// FromSeq selects records at or after this dead-letter stream sequence:
	// the next page starts at the last seq seen + 1. 0 means from the first.
	FromSeq uint64
	// Seqs, when not empty, selects only the records with these
	// dead-letter stream sequences (an operator's selection on the
	// console). Reading starts at the lowest of them.
	Seqs []uint64
}

// SinceSlack is how far before Filter.Since the server starts reading.
// FailedAt is written by a worker's clock and the stream stamps by the
// server's: the slack absorbs clock skew between the two, so a record is
// missed only when its worker's clock ran more than this ahead of the
// server's.
const SinceSlack = 5 * time.Minute

// Validate reports a filter that cannot select anything sensible.
func (f Filter) Validate() error {
	if f.Waybill != "" && subjectToken(f.Waybill) != f.Waybill { // InvalidWaybill maps to itself
		return fmt.Errorf("Filter.Waybill %q is not a waybill id (1..%d of A-Z a-z 0-9 - _) nor %q", f.Waybill, pathupdate.MaxWaybillIDLen, InvalidWaybill)
	}
	if strings.ContainsAny(f.Reason, "\r\n") {
		return fmt.Errorf("Filter.Reason %q spans lines: use %q, %q or %q", f.Reason, ReasonRejected, ReasonInvalidEvent, ReasonRetriesExhausted)
	}
	return nil
}

// Match reports whether r is selected by f.
func (f Filter) Match(r Record) bool {
	switch {
	case f.Waybill != "" && subjectToken(r.WaybillID) != f.Waybill:
		return false
	case f.ErrCode != nil && r.ErrCode != *f.ErrCode:
		return false
	case f.Reason != "" && r.Reason != f.Reason:
		return false
	case !f.Since.IsZero() && r.FailedAt.Before(f.Since):
		return false
	case f.FromSeq != 0 && r.Seq < f.FromSeq:
		return false
	case len(f.Seqs) > 0 && !slices.Contains(f.Seqs, r.Seq):
		return false
	}
	return true
}

// startSeq is the first sequence a read for f need look at; 0: the first.
func (f Filter) startSeq() uint64 {
	start := f.FromSeq
	if len(f.Seqs) > 0 {
		if lowest := slices.Min(f.Seqs); lowest > start {
			start = lowest
		}
	}
	return start
}

// subject is the stream subject the filter reads: one waybill's, or all.
func (f Filter) subject() string {
	if !f.oneWaybill() {
		return pathupdate.DeadLetterSubjectPrefix + "*"
	}
	return pathupdate.DeadLetterSubject(f.Waybill)
}

// oneWaybill reports whether f reads one waybill's subject.
func (f Filter) oneWaybill() bool { return f.Waybill != "" && f.Waybill != InvalidWaybill }

// onlyWaybill reports whether the subject alone selects the records (a
// purge can then be one request): no criterion but the waybill, and not a
// subject that holds others' records too (InvalidWaybill reads them all;
// the legacy _invalid subject also holds old dead letters of invalid ids).
func (f Filter) onlyWaybill() bool {
	return f.ErrCode == nil && f.Reason == "" && f.Since.IsZero() && f.FromSeq == 0 && len(f.Seqs) == 0 &&
		f.Waybill != InvalidWaybill && f.Waybill != legacyInvalidWaybill
}

// String describes f for messages and prompts, e.g.
// "waybill=SF1 errcode=9300507"; "all dead letters" for the zero Filter.
func (f Filter) String() string {
	var parts []string
	if f.Waybill != "" {
		parts = append(parts, "waybill="+f.Waybill)
	}
	if f.ErrCode != nil {
		parts = append(parts, "errcode="+strconv.Itoa(*f.ErrCode))
	}
	if f.Reason != "" {
		parts = append(parts, "reason="+f.Reason)
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since="+f.Since.UTC().Format(time.RFC3339))
	}
	if f.FromSeq != 0 {
		parts = append(parts, "from-seq="+strconv.FormatUint(f.FromSeq, 10))
	}
	if len(f.Seqs) > 0 {
		parts = append(parts, seqsText(f.Seqs))
	}
	if len(parts) == 0 {
		return "all dead letters"
	}
	return strings.Join(parts, " ")
}

// seqsText names a selection: every sequence when there are a few, the
// count when there are many (a message line stays short).
func seqsText(seqs []uint64) string {
	const spelledOut = 5
	if len(seqs) > spelledOut {
		return "seqs=" + strconv.Itoa(len(seqs)) + " selected"
	}
	text := make([]string, len(seqs))
	for i, q := range seqs {
		text[i] = strconv.FormatUint(q, 10)
	}
	return "seqs=" + strings.Join(text, ",")
}

// ErrBadFilterValue is matched by the errors of the Parse functions.
var ErrBadFilterValue = errors.New("bad filter value")

// ParseSince reads a --since value: a duration back from now ("90m",
// "2h", "1h30m", or whole days "3d") or an RFC 3339 time
// ("2026-01-02T15:04:05Z", "2026-01-02T15:04:05+08:00").
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: since %q: give a duration back from now (90m, 2h, 3d) or an RFC 3339 time (2026-01-02T15:04:05Z)", ErrBadFilterValue, s)
	}
	return now.Add(-d).UTC(), nil
}

func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, errors.New("bad day count")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	return d, err
}

// ParseErrCode reads an --errcode value: a whole number such as 40199,
// 9300507 or -1.
func ParseErrCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: errcode %q: give a whole number, e.g. 40199 or 9300507", ErrBadFilterValue, s)
	}
	return n, nil
}

// ParseReason reads a --reason value: one of the reasons this version
// writes.
func ParseReason(s string) (string, error) {
	if s = strings.TrimSpace(s); knownReason(s) {
		return s, nil
	}
	return "", fmt.Errorf("%w: reason %q: use %s, %s or %s", ErrBadFilterValue, s, ReasonRejected, ReasonInvalidEvent, ReasonRetriesExhausted)
}
