package deadletter_test

import (
	"fmt"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
)

// A filter selects dead letters the way `pathupdate deadletter list`
// does; the same values come from its flags.
func ExampleFilter() {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	since, err := deadletter.ParseSince("2h", now)
	if err != nil {
		panic(err)
	}
	code, err := deadletter.ParseErrCode("40199")
	if err != nil {
		panic(err)
	}
	f := deadletter.Filter{Waybill: "SF1234567890", ErrCode: &code, Since: since}
	r := deadletter.Record{
		WaybillID: "SF1234567890", Reason: deadletter.ReasonRejected, ErrCode: 40199, ErrMsg: "waybill not found",
		OriginalSubject: "3.logistics.trace.SF1234567890", OriginalSeq: 42, FailedAt: now.Add(-time.Hour),
	}
	fmt.Println(f.Match(r))
	fmt.Println(r.Subject())
	fmt.Println(deadletter.Reasons())
	// Output:
	// true
	// logistics.deadletter.SF1234567890
	// [rejected invalid_event retries_exhausted]
}
