package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/pathupdate/pathupdate/gateway"
)

const openAPIFile = "../docs/openapi/gateway.yaml"

// openAPI loads and validates the description once per test binary.
var openAPI = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIFile)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openAPI()
	if err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	return doc
}

// checkAgainstOpenAPI fails t if an answer of POST /v1/events has a status,
// a header or a body the description does not allow; routing answers (404
// elsewhere, 405 with Allow: POST for another method) must carry an Error
// body, as the description says.
func checkAgainstOpenAPI(t *testing.T, req *http.Request, r reply) {
	t.Helper()
	doc := loadOpenAPI(t)
	if req.Method != http.MethodPost || req.URL.Path != gateway.Path {
		checkRoutingAnswer(t, doc, req, r)
		return
	}
	item := doc.Paths.Find(gateway.Path)
	if item == nil || item.Post == nil {
		t.Fatalf("%s does not describe POST %s", openAPIFile, gateway.Path)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: gateway.Path, PathItem: item, Method: http.MethodPost, Operation: item.Post},
		},
		Status:  r.code,
		Header:  r.hdr,
		Body:    io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("answer %d does not match %s: %v\nbody: %s", r.code, openAPIFile, err, r.body)
	}
}

func checkRoutingAnswer(t *testing.T, doc *openapi3.T, req *http.Request, r reply) {
	t.Helper()
	want := http.StatusNotFound
	if req.URL.Path == gateway.Path {
		want = http.StatusMethodNotAllowed
		if r.hdr.Get("Allow") != http.MethodPost {
			t.Errorf("answer %d has Allow %q, want POST", r.code, r.hdr.Get("Allow"))
		}
	}
	if r.code != want {
		t.Errorf("%s %s: answer %d, want %d", req.Method, req.URL.Path, r.code, want)
	}
	var body any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", r.code, err, r.body)
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(body); err != nil {
		t.Errorf("answer %d does not match components/schemas/Error: %v", r.code, err)
	}
}

// TestOpenAPIListsExactlyTheStatusesTheGatewayAnswers provokes every
// status POST /v1/events can answer and checks that the description lists
// each of them and nothing else (every answer is also checked against the
// description by post). A new status in the code, or a stale one in the
// description, fails here.
func TestOpenAPIListsExactlyTheStatusesTheGatewayAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: gateway.Config{MaxBodyBytes: 4096, MaxEvents: 2}})
	down := setup(t, setupOpts{noStreams: true, ackTimeout: 500 * time.Millisecond})
	cases := []struct {
		name string
		b    *bundle
		body string
		hdr  hdrs
		want int
	}{
		{"accepted", b, event("OA1", 1), nil, http.StatusOK},
		{"some invalid", b, array(event("OA2", 1), `{}`), nil, http.StatusMultiStatus},
		{"bad JSON", b, `{"token":`, nil, http.StatusBadRequest},
		{"no token", b, event("OA3", 1), hdrs{"Authorization": ""}, http.StatusUnauthorized},
		{"too large", b, `[` + string(bytes.Repeat([]byte(` `), 5000)) + `]`, nil, http.StatusRequestEntityTooLarge},
		{"not JSON", b, event("OA4", 1), hdrs{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"all invalid", b, `{}`, nil, http.StatusUnprocessableEntity},
		{"no stream", down, event("OA5", 1), nil, http.StatusServiceUnavailable},
	}
	var seen []string
	for _, c := range cases {
		r := c.b.post(t, c.body, c.hdr)
		if r.code != c.want {
			t.Errorf("%s: answer %d, want %d: %s", c.name, r.code, c.want, r.body)
		}
		seen = append(seen, strconv.Itoa(r.code))
	}
	var documented []string
	for code := range loadOpenAPI(t).Paths.Find(gateway.Path).Post.Responses.Map() {
		documented = append(documented, code)
	}
	slices.Sort(seen)
	slices.Sort(documented)
	if !slices.Equal(seen, documented) {
		t.Errorf("POST %s answers %v; %s documents %v", gateway.Path, seen, openAPIFile, documented)
	}

	// Routing answers, checked against components/responses by do.
	do(t, http.MethodGet, b.url, "", nil)
	do(t, http.MethodPost, b.srv.URL()+"/v1/other", event("OA6", 1), nil)
}
