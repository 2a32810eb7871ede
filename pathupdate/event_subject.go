package pathupdate

import "fmt"

// DecodeEventFor decodes data as DecodeEvent does, and refuses (with an
// error matching ErrInvalidEvent) an event whose waybill_id is not
// waybill, the waybill of the subject it travels on: delivering it would
// break the other waybill's order. It is the rule a worker applies to
// every event it takes, so anything that republishes an event (replay)
// can tell beforehand whether it would come straight back as
// invalid_event.
func DecodeEventFor(data []byte, waybill string) (Event, error) {
	ev, err := DecodeEvent(data)
	if err == nil && ev.WaybillID != waybill {
		err = fmt.Errorf("%w: waybill_id %q in the body differs from %q in the subject", ErrInvalidEvent, ev.WaybillID, waybill)
	}
	return ev, err
}
