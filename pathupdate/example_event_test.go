package pathupdate_test

import (
	"errors"
	"fmt"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// A producer may send the cloud-call spelling; the event, its id and its
// canonical body are the same as for the snake_case spelling.
func ExampleDecodeEvent() {
	body := []byte(`{"token":"T0KEN-abc","waybillId":"SF1234567890","actionTime":1700000000,` +
		`"actionType":100001,"actionMsg":"picked up","courier":"Li"}`)
	ev, err := pathupdate.DecodeEvent(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.WaybillID, ev.ActionType, ev.ID())
	fmt.Printf("%s\n", ev.Encode())

	_, err = pathupdate.DecodeEvent([]byte(`{"token":"T0KEN-abc","waybill_id":"SF1234567890",` +
		`"action_time":1700000000,"action_type":300001,"action_msg":"out for delivery"}`))
	var invalid *pathupdate.InvalidEventError
	fmt.Println(errors.Is(err, pathupdate.ErrInvalidEvent), errors.As(err, &invalid), invalid.Field)
	fmt.Println(err)
	// Output:
	// SF1234567890 picked_up pu1-c92423264147f115b1694d0046ecd55e
	// {"token":"T0KEN-abc","waybill_id":"SF1234567890","action_time":1700000000,"action_type":100001,"action_msg":"picked up"}
	// true true action_type
	// invalid event: action_type 300001 is not one of 100001, 100002, 100003, 200001, 300002, 300003, 300004, 400001, 400002
}
