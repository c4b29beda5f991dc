package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", path, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestRoutes(t *testing.T) {
	s := &server{pod: "p-1", version: "v2", readyEnv: true, unreadyPath: filepath.Join(t.TempDir(), "unready")}
	h := s.routes()
	if code, body := get(t, h, "/"); code != 200 || body["pod"] != "p-1" || body["version"] != "v2" {
		t.Fatalf("/: %d %v", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz before fail-ready: %d", code)
	}
	if code, _ := get(t, h, "/fail-ready"); code != 200 {
		t.Fatalf("/fail-ready: %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != 503 {
		t.Fatalf("/readyz after fail-ready: %d", code)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz after fail-ready: %d", code)
	}
	if code, _ := get(t, h, "/nope"); code != 404 {
		t.Fatalf("/nope: %d", code)
	}
}

func TestReadyEnvFalse(t *testing.T) {
	s := &server{readyEnv: false, unreadyPath: filepath.Join(t.TempDir(), "unready")}
	if code, _ := get(t, s.routes(), "/readyz"); code != 503 {
		t.Fatalf("/readyz with READY=false: %d", code)
	}
}

func TestHooksRecordsPostedBodies(t *testing.T) {
	h := (&server{}).routes()
	for _, body := range []string{`{"check": "accuracy"}`, `not json`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body)))
		if want := map[bool]int{true: 200, false: 400}[json.Valid([]byte(body))]; rec.Code != want {
			t.Fatalf("POST %s: %d, want %d", body, rec.Code, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hooks", nil))
	var doc struct {
		Calls []map[string]string `json:"calls"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Calls) != 1 ||
		doc.Calls[0]["check"] != "accuracy" {
		t.Fatalf("GET /hooks: %s (%v)", rec.Body.String(), err)
	}
}
