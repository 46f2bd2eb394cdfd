package httpdoor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the handlers and the proto")

// schemaOf is a message's JSON schema as protojson writes and reads it;
// messages it refers to are added to defs.
func schemaOf(md protoreflect.MessageDescriptor, defs map[string]any) map[string]any {
	props := map[string]any{}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		var s map[string]any
		switch f.Kind() {
		case protoreflect.BoolKind:
			s = map[string]any{"type": "boolean"}
		case protoreflect.StringKind:
			s = map[string]any{"type": "string"}
		case protoreflect.DoubleKind, protoreflect.FloatKind:
			s = map[string]any{"type": "number"}
		case protoreflect.Int64Kind, protoreflect.Int32Kind:
			// protojson writes int64 as a string and reads either form.
			s = map[string]any{"type": []string{"string", "integer"}, "format": "int64"}
		case protoreflect.EnumKind:
			var names []string
			for j := 0; j < f.Enum().Values().Len(); j++ {
				names = append(names, string(f.Enum().Values().Get(j).Name()))
			}
			s = map[string]any{"type": "string", "enum": names}
		case protoreflect.MessageKind:
			name := string(f.Message().Name())
			if _, ok := defs[name]; !ok {
				defs[name] = nil // a placeholder first: recursion ends here
				defs[name] = schemaOf(f.Message(), defs)
			}
			s = map[string]any{"$ref": "#/components/schemas/" + name}
		default:
			s = map[string]any{}
		}
		if f.IsList() {
			s = map[string]any{"type": "array", "items": s}
		}
		props[f.JSONName()] = s
	}
	return map[string]any{"type": "object", "properties": props}
}

// document builds the OpenAPI 3.1 document from the routes and the proto.
func document() map[string]any {
	defs := map[string]any{"Problem": map[string]any{"type": "object", "properties": map[string]any{
		"type": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"},
		"status": map[string]any{"type": "integer"}, "detail": map[string]any{"type": "string"},
	}}}
	problem := map[string]any{"description": "RFC 9457 problem", "content": map[string]any{
		"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
	paths := map[string]any{
		"/healthz": map[string]any{"get": map[string]any{"summary": "The door is up.", "responses": map[string]any{
			"200": map[string]any{"description": "ok", "content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}}}},
		"/v1/openapi.json": map[string]any{"get": map[string]any{"summary": "This document.", "responses": map[string]any{
			"200": map[string]any{"description": "OpenAPI 3.1", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}}}},
	}
	var names []string
	for p := range routes {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		rt := routes[p]
		req := rt.newReq().ProtoReflect().Descriptor()
		resp := req.ParentFile().Messages().ByName(protoreflect.Name(strings.TrimSuffix(string(req.Name()), "Request") + "Response"))
		defs[string(req.Name())] = schemaOf(req, defs)
		defs[string(resp.Name())] = schemaOf(resp, defs)
		op := strings.TrimPrefix(p, "/v1/")
		ok := map[string]any{"description": "the answer, in protojson", "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + string(resp.Name())}}}}
		if rt.decisionOf != nil {
			ok["headers"] = map[string]any{
				"RateLimit-Policy": map[string]any{"schema": map[string]any{"type": "string"}},
				"RateLimit":        map[string]any{"schema": map[string]any{"type": "string"}},
				"Retry-After":      map[string]any{"schema": map[string]any{"type": "string"}, "description": "on a denial"},
			}
		}
		paths[p] = map[string]any{"post": map[string]any{
			"operationId": op,
			"summary":     "RateLimiter." + strings.TrimSuffix(string(req.Name()), "Request") + ", as in the gRPC contract.",
			"requestBody": map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + string(req.Name())}}}},
			"responses": map[string]any{"200": ok, "400": problem, "401": problem, "404": problem, "413": problem, "415": problem, "501": problem, "503": problem},
		}}
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "ThrottleKit HTTP/JSON door", "version": "v1"},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         defs,
			"securitySchemes": map[string]any{"secret": map[string]any{"type": "apiKey", "in": "header", "name": "X-Throttlekit-Secret"}, "bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
}

// TestOpenAPIMatchesTheHandlers: the committed document is exactly what
// the routes and the proto say (go test -update rewrites it), and every
// path it names is served.
func TestOpenAPIMatchesTheHandlers(t *testing.T) {
	want, err := json.MarshalIndent(document(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(openAPI, want) && !*update {
		t.Fatal("openapi.json is stale: run go test ./httpdoor -update")
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(want, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("document: %v, version %q", err, doc.OpenAPI)
	}
	for p := range routes {
		if _, ok := doc.Paths[p]["post"]; !ok {
			t.Errorf("%s is served but not documented", p)
		}
	}
	if len(doc.Paths) != len(routes)+2 {
		t.Errorf("%d documented paths, %d routes + 2", len(doc.Paths), len(routes))
	}
}
