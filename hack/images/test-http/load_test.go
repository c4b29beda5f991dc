package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOpenLoop sends at a fixed rate whatever the answers, and tells the 503s that
// carried Retry-After, and the successes' latencies, apart.
func TestOpenLoop(t *testing.T) {
	var n atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%4 == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"model_version": "v1"}`))
	}))
	defer target.Close()
	l := &loader{stop: make(chan struct{})}
	l.status = loadStatus{Running: true, Codes: map[string]int{}, Versions: map[string]int{}}
	l.run(loadRequest{URL: target.URL, Bodies: []json.RawMessage{[]byte(`{}`)},
		Concurrency: 4, MaxRequests: 100, MaxSeconds: 5, Rate: 200})
	s := l.status
	if s.Sent != 100 || s.OK+s.Failed+s.Skipped != 100 || s.Skipped != 0 {
		t.Fatalf("sent %d, ok %d, failed %d, skipped %d", s.Sent, s.OK, s.Failed, s.Skipped)
	}
	if s.Failed != 25 || s.RetryAfter != 25 || s.Versions["v1"] != 75 {
		t.Fatalf("failed %d, with Retry-After %d, versions %v", s.Failed, s.RetryAfter, s.Versions)
	}
	timed := 0
	for _, sec := range s.Seconds {
		for _, c := range sec.LatencyMs {
			timed += c
		}
	}
	if timed != s.OK {
		t.Fatalf("%d latencies for %d successes", timed, s.OK)
	}
}

// TestFeedback pairs each answer's id with its body's truth and posts the labels in
// batches, the last partial batch when the run ends.
func TestFeedback(t *testing.T) {
	var n atomic.Int64
	got := map[string]string{}
	var mu sync.Mutex
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/feedback" {
			var doc struct {
				Feedback []struct {
					ID    string `json:"id"`
					Truth string `json:"truth"`
				} `json:"feedback"`
			}
			_ = json.NewDecoder(r.Body).Decode(&doc)
			mu.Lock()
			for _, f := range doc.Feedback {
				got[f.ID] = f.Truth
			}
			mu.Unlock()
			return
		}
		var req struct {
			Row string `json:"row"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		fmt.Fprintf(w, `{"id": "%s-%d"}`, req.Row, n.Add(1))
	}))
	defer target.Close()
	l := &loader{stop: make(chan struct{})}
	l.status = loadStatus{Running: true, Codes: map[string]int{}, Versions: map[string]int{},
		Feedback: map[string]int{}}
	l.run(loadRequest{URL: target.URL, Concurrency: 2, MaxRequests: 120, MaxSeconds: 5,
		Bodies:      []json.RawMessage{[]byte(`{"row": "a"}`), []byte(`{"row": "b"}`)},
		Truths:      []json.RawMessage{[]byte(`"A"`), []byte(`"B"`)},
		FeedbackURL: target.URL + "/feedback"})
	if len(got) != 120 || l.status.Feedback["OK"] != 120 {
		t.Fatalf("%d labels received, counted %v", len(got), l.status.Feedback)
	}
	for id, truth := range got {
		if strings.ToUpper(id[:1]) != truth {
			t.Fatalf("id %s got truth %s", id, truth)
		}
	}
}
