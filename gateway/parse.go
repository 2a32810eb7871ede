package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// item is one valid event of a request on its way to the stream.
type item struct {
	index int
	ev    pathupdate.Event
	msgID string // never empty: given, or the event's content id
}

// parseBody splits the body into events and decodes each with
// pathupdate.DecodeEvent. It returns the valid events and a result slot
// per event, the invalid ones already filled; or a refusal of the whole
// request when the body is not one JSON object or a JSON array of at most
// maxEvents values. idemKey is the Idempotency-Key header ("" if none).
func parseBody(body []byte, maxEvents int, idemKey string) ([]item, []Result, *requestError) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil, refuse(http.StatusBadRequest, "empty body: send one event (a JSON object) or an array of events")
	}
	if !json.Valid(body) {
		return nil, nil, refuse(http.StatusBadRequest, "%s", syntaxProblem(body))
	}
	var raws []json.RawMessage
	switch trimmed[0] {
	case '{':
		raws = []json.RawMessage{body}
	case '[':
		if idemKey != "" {
			return nil, nil, refuse(http.StatusBadRequest, "the Idempotency-Key header applies to a single-event body: "+
				"for an array, give each event its own msg_id field")
		}
		var rerr *requestError
		if raws, rerr = splitArray(body, maxEvents); rerr != nil {
			return nil, nil, rerr
		}
	default:
		return nil, nil, refuse(http.StatusBadRequest, "the body is %s: send one event (a JSON object) or an array of events", pathupdate.JSONKind(trimmed[0]))
	}
	if idemKey != "" {
		if err := checkMsgID(idemKey); err != nil {
			return nil, nil, refuse(http.StatusBadRequest, "Idempotency-Key header: %v", err)
		}
	}

	results := make([]Result, len(raws))
	items := make([]item, 0, len(raws))
	for i, raw := range raws {
		ev, msgID, err := decodeItem(raw)
		if err == nil && idemKey != "" {
			if msgID != "" && msgID != idemKey {
				return nil, nil, refuse(http.StatusBadRequest, "the Idempotency-Key header and the event's msg_id differ: give one of them")
			}
			msgID = idemKey
		}
		if err != nil {
			results[i] = Result{Index: i, Status: StatusInvalid, Error: err.Error()}
			continue
		}
		if msgID == "" {
			msgID = ev.ID()
		}
		results[i] = Result{Index: i, MsgID: msgID} // status set when published
		items = append(items, item{index: i, ev: ev, msgID: msgID})
	}
	return items, results, nil
}

// splitArray returns the elements of a JSON array (body is valid JSON).
func splitArray(body []byte, maxEvents int) ([]json.RawMessage, *requestError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, refuse(http.StatusBadRequest, "the body is not a JSON array: %v", err)
	}
	var raws []json.RawMessage
	for dec.More() {
		if len(raws) == maxEvents {
			return nil, refuse(http.StatusRequestEntityTooLarge, "more than %d events in one request: split them over several requests", maxEvents)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, refuse(http.StatusBadRequest, "event %d: %v", len(raws), err)
		}
		raws = append(raws, raw)
	}
	if len(raws) == 0 {
		return nil, refuse(http.StatusBadRequest, "empty array: send at least one event")
	}
	return raws, nil
}

// decodeItem decodes one event and its optional msg_id (or msgId) field.
// msgID is "" when the event gives none (no field, or null); an empty
// string is refused.
func decodeItem(raw []byte) (ev pathupdate.Event, msgID string, err error) {
	ev, err = pathupdate.DecodeEvent(raw)
	if err != nil {
		return ev, "", err
	}
	// DecodeEvent ignores fields that are not the event's; msg_id is ours.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return ev, "", fmt.Errorf("invalid msg_id: %w", err) // DecodeEvent accepted raw: cannot happen
	}
	found := ""
	for _, key := range []string{"msg_id", "msgId"} {
		v, ok := fields[key]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return ev, "", fmt.Errorf("invalid msg_id: %s must be a JSON string, got %s", key, pathupdate.JSONKind(v[0]))
		}
		if s == "" {
			// Not "use the content id": an empty id is more likely a
			// template that produced nothing than a choice. null or no
			// field asks for the content id (docs/openapi/gateway.yaml).
			return ev, "", fmt.Errorf("invalid msg_id: %s is empty: leave the field out (or null) for the event's content id", key)
		}
		if found != "" && s != msgID {
			return ev, "", errors.New("invalid msg_id: msg_id and msgId are both given with different values: give one")
		}
		msgID, found = s, key
	}
	if msgID != "" {
		if err := checkMsgID(msgID); err != nil {
			return ev, "", fmt.Errorf("invalid msg_id: %w", err)
		}
	}
	return ev, msgID, nil
}

// checkMsgID is the Publisher's rule for a caller-given Nats-Msg-Id,
// checked here so that a bad one is answered "invalid", not "failed".
func checkMsgID(id string) error {
	if len(id) > pathupdate.MaxMsgIDLen {
		return fmt.Errorf("%d bytes long, more than %d", len(id), pathupdate.MaxMsgIDLen)
	}
	if strings.ContainsAny(id, "\r\n\x00") || strings.TrimSpace(id) != id {
		return errors.New("must be one line without leading or trailing blanks")
	}
	return nil
}

// syntaxProblem explains why body is not valid JSON, with a position.
func syntaxProblem(body []byte) string {
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return fmt.Sprintf("the body is not valid JSON: %v (line %d, column %d)", err, line, col)
	}
	return fmt.Sprintf("the body is not valid JSON: %v", err)
}

// position turns a byte offset (just past the offending byte, as
// json.SyntaxError counts) into a 1-based line and column.
func position(body []byte, offset int64) (line, col int) {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	before := body[:max(offset-1, 0)]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}
