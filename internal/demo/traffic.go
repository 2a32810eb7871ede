package demo

import (
	"fmt"
	"math/rand/v2"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// trace is the sample traffic for one waybill.
type trace struct {
	waybill string
	token   string // the token registered with the sandbox ("" = not registered)
	kind    waybillKind
	events  []pathupdate.Event
}

type waybillKind int

const (
	kindGood       waybillKind = iota // registered, right token: every event delivered in order
	kindUnknown                       // never registered: 40199
	kindWrongToken                    // registered, events carry another token: 9300507
)

// steps of a typical parcel; the middle one repeats as it moves.
var steps = []struct {
	t   pathupdate.ActionType
	msg string
}{
	{pathupdate.ActionPickedUp, "快递员已揽件"},
	{pathupdate.ActionCourierAssigned, "已分配业务员 张三 13800138000"},
	{pathupdate.ActionInTransit, "快件已到达 深圳转运中心"},
	{pathupdate.ActionInTransit, "快件已发往 上海转运中心"},
	{pathupdate.ActionInTransit, "快件已到达 上海转运中心"},
	{pathupdate.ActionOutForDelivery, "快件正在派送中"},
	{pathupdate.ActionSigned, "已签收，签收人：本人"},
}

// makeTraffic builds the sample traces: n waybills, each with a random
// number of transit steps, a share of them unknown to WeChat or carrying
// a wrong token.
func makeTraffic(rng *rand.Rand, waybills, eventsPerWaybill int, unknownShare, wrongTokenShare float64) []trace {
	out := make([]trace, 0, waybills)
	base := int64(1_767_225_600) // 2026-01-01 UTC
	for i := range waybills {
		tr := trace{
			waybill: fmt.Sprintf("DEMO%06d", i),
			token:   fmt.Sprintf("tok-%06d-%08x", i, rng.Uint32()),
		}
		switch r := rng.Float64(); {
		case r < unknownShare:
			tr.kind = kindUnknown
		case r < unknownShare+wrongTokenShare:
			tr.kind = kindWrongToken
		}
		sendToken := tr.token
		if tr.kind == kindWrongToken {
			sendToken = "wrong-" + tr.token
		}
		for j := range eventsPerWaybill {
			s := steps[min(j, len(steps)-1)]
			if j >= 2 && j < eventsPerWaybill-2 {
				s = steps[2+j%3]
			}
			if j == eventsPerWaybill-2 {
				s = steps[len(steps)-2]
			}
			tr.events = append(tr.events, pathupdate.Event{
				Token:      sendToken,
				WaybillID:  tr.waybill,
				ActionTime: base + int64(i)*7 + int64(j)*600,
				ActionType: s.t,
				ActionMsg:  fmt.Sprintf("%s (#%d)", s.msg, j+1),
			})
		}
		out = append(out, tr)
	}
	return out
}

// garbage is what a broken producer might publish with plain NATS tools.
var garbage = []struct {
	waybill string
	body    string
}{
	{"BROKEN01", `not json at all`},
	{"BROKEN02", `{"token":"t","waybill_id":"BROKEN02","action_time":"yesterday","action_type":100001,"action_msg":"x"}`},
	{"BROKEN03", `{"token":"t","waybill_id":"BROKEN03","action_time":1767225600,"action_type":300001,"action_msg":"x"}`},
	{"BROKEN04", `{"waybill_id":"BROKEN04","action_time":1767225600,"action_type":100001,"action_msg":"no token"}`},
	{"BROKEN05", `{"token":"t","waybill_id":"SOMEONE_ELSE","action_time":1767225600,"action_type":100001,"action_msg":"x"}`},
	{"BROKEN06", "{\"token\":\"t\",\"waybill_id\":\"BROKEN06\",\"action_time\":1767225600,\"action_type\":100001,\"action_msg\":\"\xff\xfe\"}"},
	{"BROKEN07", `[]`},
	{"BROKEN08", ``},
}
