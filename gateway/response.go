package gateway

import (
	"encoding/json"
	"net/http"
)

// Status is what became of one event of a request.
type Status string

// The four statuses of a Result.
const (
	// StatusAccepted: the stream stored the event (Seq is its sequence).
	StatusAccepted Status = "accepted"
	// StatusDuplicate: the stream already held an event with this msg_id
	// within its duplicate window (Seq is the earlier copy's sequence).
	StatusDuplicate Status = "duplicate"
	// StatusInvalid: the event breaks the wire-format rules; it was not
	// published and sending it again will not help.
	StatusInvalid Status = "invalid"
	// StatusFailed: the event is valid but JetStream did not acknowledge
	// it (it may or may not be stored): send it again; a repeat with the
	// same msg_id is stored once.
	StatusFailed Status = "failed"
)

// Result is the answer for the event at Index of the request (0 for a
// single-object body).
type Result struct {
	Index  int    `json:"index"`
	Status Status `json:"status"`
	Seq    uint64 `json:"seq,omitempty"`    // accepted, duplicate
	MsgID  string `json:"msg_id,omitempty"` // every valid event: the Nats-Msg-Id used
	Error  string `json:"error,omitempty"`  // invalid, failed
}

// Response is the body of every answer that got as far as the events
// (200, 207, 422, 503): one Result per event in request order, and counts.
type Response struct {
	Results    []Result `json:"results"`
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Invalid    int      `json:"invalid"`
	Failed     int      `json:"failed"`
	// Error says, on a 503, why some events were not published.
	Error string `json:"error,omitempty"`

	cause error // the first publish failure, for the log
}

// ErrorResponse is the body of an answer that refuses the request as a
// whole (400, 401, 404, 405, 413, 415): nothing was published.
type ErrorResponse struct {
	Error string `json:"error"`
}

// count fills the counters from the results.
func (r *Response) count() {
	r.Accepted, r.Duplicates, r.Invalid, r.Failed = 0, 0, 0, 0
	for _, res := range r.Results {
		switch res.Status {
		case StatusAccepted:
			r.Accepted++
		case StatusDuplicate:
			r.Duplicates++
		case StatusInvalid:
			r.Invalid++
		case StatusFailed:
			r.Failed++
		}
	}
}

// statusCode is the HTTP status of a Response: a failed event wins (the
// client must send those again), then invalid ones (207 when the rest was
// stored, 422 when nothing was valid), else 200.
func (r *Response) statusCode() int {
	switch {
	case r.Failed > 0:
		return http.StatusServiceUnavailable
	case r.Invalid == len(r.Results):
		return http.StatusUnprocessableEntity
	case r.Invalid > 0:
		return http.StatusMultiStatus
	}
	return http.StatusOK
}

// writeJSON writes body with code. Answers are never cached: they report
// what the stream did with this request.
func writeJSON(w http.ResponseWriter, code int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// An encoding error here is a client that went away: nothing to do.
	_ = json.NewEncoder(w).Encode(body)
}
