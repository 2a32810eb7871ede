package sandbox

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Call is one logistics.updatePath call that got past the access_token
// check (and, through the cloud call, past the invoke API's env and name
// checks), with the answer it got. Fields of the body that could not be
// read are zero.
type Call struct {
	// Seq numbers calls in arrival order across all waybills, from 1.
	Seq        int64     `json:"seq"`
	At         time.Time `json:"at"` // arrival, by Config.Now
	WaybillID  string    `json:"waybill_id"`
	Token      string    `json:"token"` // the event's token (not the access_token)
	ActionTime int64     `json:"action_time"`
	ActionType int       `json:"action_type"`
	ActionMsg  string    `json:"action_msg"`
	// UserAgent is the caller's User-Agent header: pathupdate workers name
	// themselves there, so a test can tell which worker made the call.
	UserAgent string `json:"user_agent,omitempty"`
	// ErrCode is the errcode answered with HTTP 200; 0 otherwise.
	ErrCode int `json:"errcode"`
	// HTTPStatus is the HTTP status answered: 200, a 5xx fault,
	// StatusClientClosed when the client gave up first, or 0 while the
	// call is still being answered.
	HTTPStatus int `json:"http_status"`
	// Via is "" for a call of path/update, ViaCloudCall for one through
	// /tcb/invokecloudfunction, ViaOpenInterface for one through the
	// open-interface service (Config.OpenInterface). For the latter ErrCode is the invoke API's
	// errcode when that was not 0, else the errCode the function returned.
	Via string `json:"via,omitempty"`
}

// ViaCloudCall is Call.Via of a call made through the cloud function.
const ViaCloudCall = "cloudcall"

// Delivered reports whether WeChat would have taken the event.
func (c Call) Delivered() bool { return c.HTTPStatus == http.StatusOK && c.ErrCode == ErrcodeOK }

// Stats are counts since New or the last Reset.
type Stats struct {
	// ClassicTokenCalls and StableTokenCalls count calls of the token
	// endpoints, whatever they were answered.
	ClassicTokenCalls int64 `json:"classic_token_calls"`
	StableTokenCalls  int64 `json:"stable_token_calls"`
	// ClassicTokensIssued and StableTokensIssued count new tokens made.
	ClassicTokensIssued int64 `json:"classic_tokens_issued"`
	StableTokensIssued  int64 `json:"stable_tokens_issued"`
	// UpdateCalls counts every path/update and invokecloudfunction call,
	// including those refused for their access_token (which are not
	// recorded as Calls).
	UpdateCalls int64 `json:"update_calls"`
	// CloudCalls counts the invokecloudfunction calls among UpdateCalls.
	CloudCalls int64 `json:"cloud_calls"`
	// ByErrcode counts the path/update calls answered HTTP 200, by errcode.
	ByErrcode map[int]int64 `json:"by_errcode"`
	// ByHTTPStatus counts path/update calls by HTTP status (including
	// StatusClientClosed).
	ByHTTPStatus map[int]int64 `json:"by_http_status"`
	// Delivered counts calls answered errcode 0.
	Delivered int64 `json:"delivered"`
}

// record is the log of path/update calls. One mutex: appends are O(1) and
// readers copy, so hundreds of concurrent calls do not queue for long.
type record struct {
	mu        sync.Mutex
	gen       uint64 // bumped by reset; a call of an older generation is dropped
	seq       int64
	calls     []Call           // arrival order, all waybills
	byWaybill map[string][]int // indexes into calls
	byErrcode map[int]int64
	byStatus  map[int]int64
	total     int64
	cloud     int64 // invokecloudfunction calls among total
	delivered int64
}

// callHandle finds a recorded call again to put its answer in.
type callHandle struct {
	gen uint64
	idx int
}

func (r *record) init() {
	r.calls = nil
	r.byWaybill = make(map[string][]int)
	r.byErrcode = make(map[int]int64)
	r.byStatus = make(map[int]int64)
	r.total, r.cloud, r.delivered = 0, 0, 0
}

// arrive records c as the next call and returns its handle.
func (r *record) arrive(c Call) callHandle {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	c.Seq = r.seq
	r.calls = append(r.calls, c)
	i := len(r.calls) - 1
	r.byWaybill[c.WaybillID] = append(r.byWaybill[c.WaybillID], i)
	return callHandle{r.gen, i}
}

// finish puts the answer into the call h and counts it.
func (r *record) finish(h callHandle, status, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.gen != r.gen {
		return // recorded before a Reset
	}
	c := &r.calls[h.idx]
	c.HTTPStatus, c.ErrCode = status, code
	r.countLocked(status, code)
}

// count counts a call that is not recorded.
func (r *record) count(status, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.countLocked(status, code)
}

// countCloud counts an invokecloudfunction call (which count or finish
// also counts among all calls).
func (r *record) countCloud() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cloud++
}

func (r *record) countLocked(status, code int) {
	r.total++
	r.byStatus[status]++
	if status == http.StatusOK {
		r.byErrcode[code]++
		if code == ErrcodeOK {
			r.delivered++
		}
	}
}

// Calls returns every recorded path/update call of waybillID in arrival
// order, answered or not yet. Calls whose body had no readable waybill_id
// are under "".
func (s *Sandbox) Calls(waybillID string) []Call {
	return s.rec.list(waybillID, false)
}

// Delivered returns the calls of waybillID answered errcode 0, in arrival
// order.
func (s *Sandbox) Delivered(waybillID string) []Call {
	return s.rec.list(waybillID, true)
}

func (r *record) list(waybillID string, deliveredOnly bool) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := r.byWaybill[waybillID]
	out := make([]Call, 0, len(idx))
	for _, i := range idx {
		if c := r.calls[i]; !deliveredOnly || c.Delivered() {
			out = append(out, c)
		}
	}
	return out
}

// Waybills returns the waybill ids that have recorded calls, sorted.
func (s *Sandbox) Waybills() []string {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	out := make([]string, 0, len(s.rec.byWaybill))
	for w := range s.rec.byWaybill {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

// Stats returns the counts since New or the last Reset.
func (s *Sandbox) Stats() Stats {
	var st Stats
	t := &s.tokens
	t.mu.Lock()
	st.ClassicTokenCalls, st.StableTokenCalls = t.classicCalls, t.stableCalls
	st.ClassicTokensIssued, st.StableTokensIssued = t.classicIssued, t.stableIssued
	t.mu.Unlock()

	r := &s.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	st.UpdateCalls, st.CloudCalls, st.Delivered = r.total, r.cloud, r.delivered
	st.ByErrcode = maps.Clone(r.byErrcode)
	st.ByHTTPStatus = maps.Clone(r.byStatus)
	return st
}

// Reset forgets every recorded call and every count. Orders, faults and
// issued tokens stay. A call being answered during Reset is not recorded.
func (s *Sandbox) Reset() {
	t := &s.tokens
	t.mu.Lock()
	t.classicCalls, t.stableCalls, t.classicIssued, t.stableIssued = 0, 0, 0, 0
	t.mu.Unlock()

	r := &s.rec
	r.mu.Lock()
	r.gen++
	r.init()
	r.mu.Unlock()
	s.NextDay() // the daily quota starts again too
	s.log.Info().Msg("sandbox: record reset")
}
