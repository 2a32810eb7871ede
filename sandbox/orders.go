package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Order is a waybill and the token WeChat gave for it (from the Order
// Placement Event): all the sandbox knows of an order.
type Order struct {
	WaybillID string `json:"waybill_id"`
	Token     string `json:"token"`
}

// AddOrder registers waybillID with token, replacing any token it had.
func (s *Sandbox) AddOrder(waybillID, token string) {
	s.mu.Lock()
	s.orders[waybillID] = token
	s.mu.Unlock()
}

// Orders returns the registered orders sorted by waybill id.
func (s *Sandbox) Orders() []Order {
	s.mu.Lock()
	out := make([]Order, 0, len(s.orders))
	for w, tok := range s.orders {
		out = append(out, Order{w, tok})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Order) int { return strings.Compare(a.WaybillID, b.WaybillID) })
	return out
}

// maxOrderLine is the longest JSON line LoadOrders reads.
const maxOrderLine = 1 << 20

// LoadOrders reads orders as JSON lines ({"waybill_id":..,"token":..} per
// line, blank lines skipped) or as one JSON array of such objects, and
// returns them as waybill_id -> token. Errors name the line. A waybill given
// twice with different tokens is an error; twice with the same token is not.
func LoadOrders(r io.Reader) (map[string]string, error) {
	br := bufio.NewReader(r)
	first, err := firstNonSpace(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]string{}, nil
		}
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	if first == '[' {
		return loadOrderArray(br)
	}
	return loadOrderLines(br)
}

// firstNonSpace peeks at the first byte that is not white space.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if !strings.ContainsRune(" \t\r\n", rune(b)) {
			return b, br.UnreadByte()
		}
	}
}

// orderSet collects orders and says where a waybill was first given.
type orderSet struct {
	tokens map[string]string
	where  map[string]int // waybill -> line it was first given on
}

func (o *orderSet) add(line int, ord Order) error {
	switch {
	case ord.WaybillID == "":
		return fmt.Errorf("line %d: waybill_id missing or empty", line)
	case ord.Token == "":
		return fmt.Errorf("line %d: token missing or empty for waybill %q", line, ord.WaybillID)
	}
	if prev, ok := o.tokens[ord.WaybillID]; ok && prev != ord.Token {
		return fmt.Errorf("line %d: waybill %q already given on line %d with a different token", line, ord.WaybillID, o.where[ord.WaybillID])
	} else if !ok {
		o.where[ord.WaybillID] = line
	}
	o.tokens[ord.WaybillID] = ord.Token
	return nil
}

func newOrderSet() *orderSet {
	return &orderSet{tokens: map[string]string{}, where: map[string]int{}}
}

func loadOrderLines(br *bufio.Reader) (map[string]string, error) {
	set := newOrderSet()
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64*1024), maxOrderLine)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var ord Order
		if err := json.Unmarshal(text, &ord); err != nil {
			return nil, fmt.Errorf("line %d: not an order object {\"waybill_id\":..,\"token\":..}: %w", line, err)
		}
		if err := set.add(line, ord); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	return set.tokens, nil
}

func loadOrderArray(br *bufio.Reader) (map[string]string, error) {
	// The whole array is read first so an offset can be turned into a line.
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, fmt.Errorf("line 1: %w", err)
	}
	set := newOrderSet()
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineAt(errOffset(err, dec.InputOffset())), err)
		}
		// raw is the element's exact bytes, ending at InputOffset.
		line := lineAt(dec.InputOffset() - int64(len(raw)))
		var ord Order
		if err := json.Unmarshal(raw, &ord); err != nil {
			return nil, fmt.Errorf("line %d: not an order object {\"waybill_id\":..,\"token\":..}: %w", line, err)
		}
		if err := set.add(line, ord); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the ']'
		if errors.Is(err, io.EOF) {
			err = errors.New("unexpected end: the array is not closed with ]")
		}
		return nil, fmt.Errorf("line %d: %w", lineAt(dec.InputOffset()), err)
	}
	if dec.More() {
		return nil, fmt.Errorf("line %d: data after the closing ]", lineAt(dec.InputOffset()))
	}
	return set.tokens, nil
}

// errOffset is where a JSON syntax error is, or fallback.
func errOffset(err error, fallback int64) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	return fallback
}
