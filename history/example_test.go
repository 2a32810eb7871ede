package history_test

import (
	"fmt"
	"time"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// A record keeps the event's step, never its whole token; it is stored on
// the waybill's own subject, which is how `pathupdate trace` finds it.
func ExampleRecord() {
	ev := pathupdate.Event{Token: "order-token-8f3a", WaybillID: "SF1234567890", ActionTime: 1767225600,
		ActionType: pathupdate.ActionPickedUp, ActionMsg: "picked up"}
	r := history.Record{State: history.Delivered, Seq: 42, Attempts: 1, At: time.Unix(1767225601, 0)}.FromEvent(ev)
	fmt.Println(history.Subject(r.WaybillID), r.State, r.TokenTail, r.ActionMsg)
	// Output:
	// logistics.history.SF1234567890 delivered 8f3a picked up
}
