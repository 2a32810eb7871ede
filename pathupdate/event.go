package pathupdate

import "errors"

// ActionType is the kind of trace step, as WeChat numbers it.
type ActionType int

// The action types logistics.updatePath accepts (and nothing else).
const (
	ActionPickedUp        ActionType = 100001 // 揽件阶段-揽件成功
	ActionPickUpFailed    ActionType = 100002 // 揽件阶段-揽件失败
	ActionCourierAssigned ActionType = 100003 // 揽件阶段-分配业务员
	ActionInTransit       ActionType = 200001 // 运输阶段-更新运输轨迹
	ActionOutForDelivery  ActionType = 300002 // 派送阶段-开始派送
	ActionSigned          ActionType = 300003 // 派送阶段-签收成功
	ActionSignFailed      ActionType = 300004 // 派送阶段-签收失败
	ActionOrderCancelled  ActionType = 400001 // 异常阶段-订单取消
	ActionOrderHeldUp     ActionType = 400002 // 异常阶段-订单滞留
)

// Limits of the wire format (CONTRACT.md "The event").
const (
	MaxTokenLen     = 256  // characters of token
	MaxWaybillIDLen = 64   // characters of waybill_id, each of A-Z a-z 0-9 - _
	MaxActionMsgLen = 1024 // characters (runes) of action_msg; WeChat documents none, this is ours
)

// ErrInvalidEvent is matched (errors.Is) by every error that says an event
// breaks the wire-format rules. Such an event will never be delivered; a
// worker dead-letters it with reason invalid_event.
var ErrInvalidEvent = errors.New("invalid event")

// Event is one trace step of one waybill: exactly the HTTPS request body of
// logistics.updatePath.
type Event struct {
	Token      string     `json:"token"`
	WaybillID  string     `json:"waybill_id"`
	ActionTime int64      `json:"action_time"`
	ActionType ActionType `json:"action_type"`
	ActionMsg  string     `json:"action_msg"`
}
