package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"
)

// The admin endpoints drive a sandbox from another process: the demo, tests
// that run the CLI, and users of `pathupdate sandbox`.
func (s *Sandbox) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /sandbox/orders", s.handleAddOrders)
	m.HandleFunc("GET /sandbox/orders", s.handleListOrders)
	m.HandleFunc("GET /sandbox/faults", s.handleGetFaults)
	m.HandleFunc("PUT /sandbox/faults", s.handlePutFaults)
	m.HandleFunc("POST /sandbox/revoke-tokens", s.handleRevokeTokens)
	m.HandleFunc("GET /sandbox/received", s.handleReceived)
	m.HandleFunc("GET /sandbox/stats", s.handleStats)
	m.HandleFunc("POST /sandbox/reset", s.handleReset)
}

// adminError answers an admin request the sandbox cannot carry out.
func adminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// adminOK answers a done admin action.
func adminOK(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) }

// handleAddOrders registers orders given as a JSON array or JSON lines.
func (s *Sandbox) handleAddOrders(w http.ResponseWriter, r *http.Request) {
	orders, err := LoadOrders(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	for wb, tok := range orders {
		s.orders[wb] = tok
	}
	s.mu.Unlock()
	s.log.Info().Int("orders", len(orders)).Msg("sandbox: orders registered")
	writeJSON(w, http.StatusOK, map[string]int{"registered": len(orders)})
}

func (s *Sandbox) handleListOrders(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Orders())
}

func (s *Sandbox) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// FaultsRequest is the body of PUT /sandbox/faults: Faults, plus
// outage_seconds, which sets OutageUntil to now + N seconds (by Config.Now)
// so a script need not know the sandbox's clock.
type FaultsRequest struct {
	Faults
	OutageSeconds *float64 `json:"outage_seconds,omitempty"`
}

// handlePutFaults replaces the faults; unknown fields are refused so a
// misspelt fault does not silently inject nothing.
func (s *Sandbox) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	var req FaultsRequest
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, fmt.Errorf("faults: %w", err))
		return
	}
	f := req.Faults
	if n := req.OutageSeconds; n != nil {
		if !(*n >= 0) || *n > math.MaxInt32 {
			adminError(w, http.StatusBadRequest, fmt.Errorf("outage_seconds %v: want 0 or more seconds", *n))
			return
		}
		f.OutageUntil = s.cfg.Now().Add(time.Duration(*n * float64(time.Second)))
	}
	if err := f.Validate(); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Sandbox) handleRevokeTokens(w http.ResponseWriter, _ *http.Request) {
	s.RevokeTokens()
	s.log.Info().Msg("sandbox: access tokens revoked")
	adminOK(w)
}

// Received is the answer of GET /sandbox/received.
type Received struct {
	Waybills map[string][]Call `json:"waybills"`
}

// handleReceived lists recorded calls by waybill: ?waybill=W for one,
// ?delivered=1 for errcode-0 calls only.
func (s *Sandbox) handleReceived(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	delivered := false
	switch q.Get("delivered") {
	case "", "0", "false":
	case "1", "true":
		delivered = true
	default:
		adminError(w, http.StatusBadRequest, fmt.Errorf("delivered=%q: want 1 or 0", q.Get("delivered")))
		return
	}
	waybills := s.Waybills()
	if q.Has("waybill") {
		waybills = []string{q.Get("waybill")}
	}
	out := Received{Waybills: make(map[string][]Call, len(waybills))}
	for _, wb := range waybills {
		out.Waybills[wb] = s.rec.list(wb, delivered)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Sandbox) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	adminOK(w)
}
