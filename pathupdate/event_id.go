package pathupdate

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// ID returns the event's content-derived id, which the publisher sends as
// Nats-Msg-Id so that publishing the same event twice within the stream's
// duplicate window stores it once. It depends on the five field values
// only, never on their JSON spelling, so any program in any language
// computes the same id (docs/event-id.md has the recipe with worked values
// and a shell one-liner). Version 1, exactly:
//
//	input = "pathupdate-event-v1\n" + waybill_id + "\n" +
//	        decimal(action_time) + "\n" + decimal(action_type) + "\n" +
//	        decimal(byte length of token) + "\n" + token + action_msg
//	id    = "pu1-" + lowercase hex of the first 16 bytes of SHA-256(input)
//
// Strings go in as their UTF-8 bytes; decimals are base 10 without sign or
// leading zeros for valid events. A valid waybill_id holds no "\n" and the
// token's length is given, so two valid events share an id only if all
// five fields are equal (short of a SHA-256 collision). The id reveals
// nothing usable about the token. On an invalid event ID still returns a
// value, but distinct invalid events may then share it.
func (e Event) ID() string {
	var stack [512]byte // typical input fits: no heap allocation for it
	b := append(stack[:0], eventIDDomain...)
	b = append(b, e.WaybillID...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, e.ActionTime, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(e.ActionType), 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(len(e.Token)), 10)
	b = append(b, '\n')
	b = append(b, e.Token...)
	b = append(b, e.ActionMsg...)
	sum := sha256.Sum256(b)

	var id [len(eventIDPrefix) + 2*eventIDBytes]byte
	copy(id[:], eventIDPrefix)
	hex.Encode(id[len(eventIDPrefix):], sum[:eventIDBytes])
	return string(id[:])
}

// A new recipe must change both the domain line and the prefix, so ids of
// different versions can never be mistaken for each other.
const (
	eventIDDomain = "pathupdate-event-v1\n"
	eventIDPrefix = "pu1-"
	eventIDBytes  = 16 // 128 bits: collisions are no concern at any stream size
)
