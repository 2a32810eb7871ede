package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"go.yaml.in/yaml/v4"

	"github.com/pathupdate/pathupdate/gateway"
)

// schemaAccepts reports whether the description accepts body as the
// request body of POST /v1/events (openapi3filter, security aside).
func schemaAccepts(t *testing.T, doc *openapi3.T, body string) error {
	t.Helper()
	item := doc.Paths.Find(gateway.Path)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1"+gateway.Path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: doc, Path: gateway.Path, PathItem: item, Method: http.MethodPost, Operation: item.Post},
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	})
}

// The description and the gateway accept and refuse the same events: each
// case goes to the schema (openapi3filter) and to a live gateway on a real
// JetStream server, and the two must agree with each other and with the
// decision written in docs/gateway.md.
func TestOpenAPIAndGatewayAgreeOnEvents(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	b := setup(t, setupOpts{})
	const (
		tk   = `"token":"TK"`
		snk  = `"waybill_id":"AG1","action_time":1767225600,"action_type":100001,"action_msg":"m"`
		caml = `"waybillId":"AG2","actionTime":1767225600,"actionType":100001,"actionMsg":"m"`
	)
	for _, tt := range []struct {
		name, body string
		accepted   bool
	}{
		{"snake_case", `{` + tk + `,` + snk + `}`, true},
		{"camelCase with msgId", `{` + tk + `,` + caml + `,"msgId":"ag-camel-1"}`, true},
		{"mixed spellings", `{"token":"TK","waybill_id":"AG3","actionTime":1767225600,"action_type":100001,"actionMsg":"m"}`, true},
		{"both spellings agree", `{` + tk + `,` + snk + `,"waybillId":"AG1"}`, true},
		{"msg_id null", `{` + tk + `,` + snk + `,"msg_id":null}`, true},
		{"msgId null", `{` + tk + `,` + caml + `,"msgId":null}`, true},
		{"msg_id empty", `{` + tk + `,` + snk + `,"msg_id":""}`, false},
		{"msgId empty", `{` + tk + `,` + caml + `,"msgId":""}`, false},
		{"msg_id a number", `{` + tk + `,` + snk + `,"msg_id":7}`, false},
		{"msg_id too long", `{` + tk + `,` + snk + `,"msg_id":"` + strings.Repeat("m", 257) + `"}`, false},
		{"no action_msg in either spelling", `{"token":"TK","waybill_id":"AG4","action_time":1767225600,"action_type":100001}`, false},
		{"no token", `{` + snk + `}`, false},
		{"action_type a string", `{"token":"TK","waybill_id":"AG5","action_time":1767225600,"action_type":"100001","action_msg":"m"}`, false},
		{"action_type unknown", `{"token":"TK","waybill_id":"AG5","action_time":1767225600,"action_type":999,"action_msg":"m"}`, false},
		{"action_time zero", `{"token":"TK","waybill_id":"AG5","action_time":0,"action_type":100001,"action_msg":"m"}`, false},
		{"waybill with a dot", `{"token":"TK","waybill_id":"A.B","action_time":1,"action_type":100001,"action_msg":"m"}`, false},
		{"token of 257", `{"token":"` + strings.Repeat("t", 257) + `",` + snk + `}`, false},
		{"empty action_msg", `{"token":"TK","waybillId":"AG6","actionTime":1,"actionType":100001,"actionMsg":""}`, false},
		{"an array of one good event", `[{` + tk + `,` + snk + `}]`, true},
	} {
		schemaErr := schemaAccepts(t, doc, tt.body)
		r := b.post(t, tt.body, nil) // the answer is checked against the description too
		gatewayOK := r.code == http.StatusOK
		if (schemaErr == nil) != gatewayOK {
			t.Errorf("%s: the description %s it (%v), the gateway answers %d: %s", tt.name,
				map[bool]string{true: "accepts", false: "refuses"}[schemaErr == nil], schemaErr, r.code, r.body)
			continue
		}
		if gatewayOK != tt.accepted {
			t.Errorf("%s: accepted %v by both, want %v (docs/gateway.md): %s", tt.name, gatewayOK, tt.accepted, r.body)
		}
	}
}

// Every example in the description matches its schema; every request
// example is accepted by a live gateway; an example in the camelCase
// spelling uses msgId, not msg_id, unless it shows a mix.
func TestOpenAPIExamplesMatchSchemasAndGateway(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	b := setup(t, setupOpts{})
	checked := 0
	check := func(where string, schema *openapi3.SchemaRef, ex *openapi3.Example, request bool) {
		t.Helper()
		checked++
		if schema == nil || schema.Value == nil {
			t.Errorf("%s: an example without a schema", where)
			return
		}
		if err := schema.Value.VisitJSON(ex.Value); err != nil {
			t.Errorf("%s: the example does not match its schema: %v", where, err)
		}
		if !request {
			return
		}
		body, err := json.Marshal(ex.Value)
		if err != nil {
			t.Fatal(err)
		}
		if r := b.post(t, string(body), nil); r.code != http.StatusOK {
			t.Errorf("%s: the gateway answers the example %d: %s", where, r.code, r.body)
		}
		events, _ := ex.Value.([]any)
		if obj, ok := ex.Value.(map[string]any); ok {
			events = []any{obj}
		}
		for _, e := range events {
			obj, _ := e.(map[string]any)
			_, camel := obj["waybillId"]
			_, snake := obj["waybill_id"]
			_, snakeID := obj["msg_id"]
			_, camelID := obj["msgId"]
			if camel && !snake && snakeID || snake && !camel && camelID {
				if !strings.Contains(strings.ToLower(ex.Summary), "mix") {
					t.Errorf("%s: an event in one spelling with its msg_id in the other: %v", where, obj)
				}
			}
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					for name, ex := range mt.Examples {
						check(method+" "+path+" request "+ct+" example "+name, mt.Schema, ex.Value, true)
					}
					if mt.Example != nil {
						check(method+" "+path+" request example", mt.Schema, &openapi3.Example{Value: mt.Example}, true)
					}
				}
			}
			for code, resp := range op.Responses.Map() {
				for ct, mt := range resp.Value.Content {
					for name, ex := range mt.Examples {
						check(method+" "+path+" response "+code+" "+ct+" example "+name, mt.Schema, ex.Value, false)
					}
					if mt.Example != nil {
						check(method+" "+path+" response "+code+" example", mt.Schema, &openapi3.Example{Value: mt.Example}, false)
					}
				}
			}
		}
	}
	for name, s := range doc.Components.Schemas {
		if s.Value.Example != nil {
			check("components/schemas/"+name+" example", s, &openapi3.Example{Value: s.Value.Example}, false)
		}
	}
	if checked == 0 {
		t.Fatalf("checked %d examples: the walk is broken", checked)
	}
}

// Every component of the description is used: an unused one is either
// dead text or something a reader thinks applies and does not.
func TestOpenAPIHasNoUnusedComponents(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					refs[s] = true
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(root)
	security := map[string]bool{}
	for _, req := range root["security"].([]any) {
		for name := range req.(map[string]any) {
			security[name] = true
		}
	}
	var unused []string
	components, _ := root["components"].(map[string]any)
	for kind, group := range components {
		for name := range group.(map[string]any) {
			if kind == "securitySchemes" {
				if !security[name] {
					unused = append(unused, "securitySchemes/"+name)
				}
				continue
			}
			if !refs["#/components/"+kind+"/"+name] {
				unused = append(unused, kind+"/"+name)
			}
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("%s: unused components: %s", openAPIFile, strings.Join(unused, ", "))
	}
	if !bytes.Contains(data, []byte("$ref")) {
		t.Fatal("no $ref found: the walk is broken")
	}
}
