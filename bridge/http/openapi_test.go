package http_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// openAPIDoc is what the test reads of openapi.json.
type openAPIDoc struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
}

type openAPIOperation struct {
	Role     string           `json:"x-outpost-role"`
	Security *[]any           `json:"security"`
	Params   []map[string]any `json:"parameters"`
}

// registeredRoutes are the patterns the package's code registers on its
// mux (every HandleFunc or Handle call outside the tests), with where:
// read from the source, so a route added anywhere in the package is
// seen without a list to keep.
func registeredRoutes(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") || len(call.Args) != 2 {
				return true
			}
			where := fset.Position(call.Pos()).String()
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route registered with a pattern that is not a string literal: write the pattern out, so that this test (and openapi.json) sees it", where)
				return true
			}
			p, _ := strconv.Unquote(lit.Value)
			if method, path, ok := strings.Cut(p, " "); !ok || method != strings.ToUpper(method) || !strings.HasPrefix(path, "/") {
				t.Errorf("%s: route %q: give its method (\"GET /path\"): the API documents each method of a path", where, p)
			}
			out[p] = where
			return true
		})
	}
	return out
}

// TestOpenAPICoversTheMux: every route the code registers is in
// openapi.json with the role the TCP listener gives it, and every route
// documented there is served: a real server answers it on the socket
// and on TCP with its handler, not with the mux's 404 or 405.
func TestOpenAPICoversTheMux(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi.json: openapi %q, want 3.1.0", doc.OpenAPI)
	}
	// Checked against the OpenAPI 3.1 schema by a third party's
	// validator, which then checks the real answers below.
	spec, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	check, errs := validator.NewValidator(spec)
	if len(errs) > 0 {
		t.Fatalf("openapi.json: %v", errs)
	}
	if ok, errs := check.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("openapi.json is not valid OpenAPI 3.1: %s: %s %v", e.Message, e.Reason, e.SchemaValidationErrors)
		}
	}
	documented := map[string]openAPIOperation{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = op
		}
	}
	registered := registeredRoutes(t)
	if len(registered) < 40 {
		t.Fatalf("only %d routes found in the code: the parser misses some", len(registered))
	}
	for _, p := range slices.Sorted(maps.Keys(registered)) {
		op, ok := documented[p]
		if !ok {
			method, path, _ := strings.Cut(p, " ")
			t.Errorf("route %q (%s) is not in bridge/http/openapi.json: add paths[%q][%q] (summary, x-outpost-role, parameters, requestBody, responses)",
				p, registered[p], path, strings.ToLower(method))
			continue
		}
		want := "admin"
		switch {
		case bhttp.PublicRoutes[p]:
			want = "public"
		case bhttp.UserRoutes[p]:
			want = "user"
		}
		if op.Role != want {
			t.Errorf("openapi.json: %s has x-outpost-role %q; the TCP listener makes it %q", p, op.Role, want)
		}
		if public := op.Security != nil && len(*op.Security) == 0; public != (want == "public") {
			t.Errorf("openapi.json: %s: security [] (no token) is %v; the TCP listener asks for a token: %v", p, public, want != "public")
		}
	}
	for _, p := range slices.Sorted(maps.Keys(documented)) {
		if _, ok := registered[p]; !ok {
			t.Errorf("openapi.json documents %q, which no code registers: remove it, or serve it", p)
		}
	}

	// A real server: each documented route, its path parameters filled,
	// must reach its handler on both listeners.
	router := newRouter(t)
	router.Add(smsStub{})
	sock, base := serveTCP(t, router)
	code, b := sock("POST", "/v1/tokens", `{"name": "ops", "role": "admin"}`)
	var tok struct{ Token string }
	if code != 201 || json.Unmarshal(b, &tok) != nil {
		t.Fatalf("token add: %d %s", code, b)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, p := range slices.Sorted(maps.Keys(documented)) {
		method, path, _ := strings.Cut(p, " ")
		path = param.ReplaceAllString(path, "x")
		body := ""
		if method != "GET" {
			body = "{}"
		}
		code, b := sock(method, path, body)
		checkHandled(t, "socket", p, code, b)
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			// A stream does not end: its first lines are its answer.
			b = make([]byte, 256)
			n, _ := resp.Body.Read(b)
			b = b[:n]
		} else {
			b, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if strings.HasPrefix(e.Error, "no route ") || strings.Contains(e.Error, " not allowed on ") {
			t.Errorf("TCP: documented %s is not served: %d %s", p, resp.StatusCode, e.Error)
			continue
		}
		// The answer is one the description says: its status, its
		// content type, its body's schema.
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if ok, errs := check.ValidateHttpResponse(req, resp); !ok {
			for _, e := range errs {
				t.Errorf("%s answered %d %s, not as openapi.json says: %s: %s %v", p, resp.StatusCode, b, e.Message, e.Reason, e.SchemaValidationErrors)
			}
		}
	}
	if t.Failed() {
		return
	}

	// Served on both listeners, with no token on TCP.
	resp, err := http.Get(base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var served openAPIDoc
	err = json.NewDecoder(resp.Body).Decode(&served)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || len(served.Paths) != len(doc.Paths) {
		t.Errorf("GET /v1/openapi.json on TCP with no token: %d %q, %v, %d paths", resp.StatusCode, resp.Header.Get("Content-Type"), err, len(served.Paths))
	}
}

// checkHandled fails when the answer to route is the mux's own (text
// 404 or 405: no handler took it) or a handler's panic.
func checkHandled(t *testing.T, on, route string, code int, b []byte) {
	t.Helper()
	var e struct{ Error string }
	isJSON := json.Unmarshal(b, &e) == nil
	switch {
	case (code == 404 || code == 405) && !isJSON:
		t.Errorf("%s: documented %s is not served: the mux answered %d %q", on, route, code, b)
	case strings.HasPrefix(e.Error, "internal error in "):
		t.Errorf("%s: %s panicked: %s", on, route, e.Error)
	case code >= 500 && code != 503:
		t.Errorf("%s: %s: %d %s", on, route, code, b)
	}
}
