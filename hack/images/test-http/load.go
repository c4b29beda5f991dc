package main

// A bounded load generator that runs inside the cluster, so tests can send
// traffic to a Service's cluster IP and DNS name the way real clients do.
//
//	POST /load/start {"url", "bodies", "concurrency", "maxRequests", "maxSeconds", "keepAlive"}
//	                   bodies are sent round-robin; without keepAlive every request
//	                   opens a new connection, so kube-proxy balances requests, not
//	                   connections
//	GET  /load/status  counts by HTTP status and by the answer's model_version,
//	                   per second, plus the first errors
//	POST /load/stop
//
// Every run is bounded by maxRequests and maxSeconds (both capped).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

const (
	maxConcurrency = 64
	capRequests    = 1_000_000
	capSeconds     = 900
)

type loadRequest struct {
	URL         string            `json:"url"`
	Bodies      []json.RawMessage `json:"bodies"`
	Concurrency int               `json:"concurrency"`
	MaxRequests int               `json:"maxRequests"`
	MaxSeconds  int               `json:"maxSeconds"`
	KeepAlive   bool              `json:"keepAlive"`
}

type second struct {
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Versions map[string]int `json:"versions"`
}

type loadStatus struct {
	Running  bool           `json:"running"`
	Sent     int            `json:"sent"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Codes    map[string]int `json:"codes"`
	Versions map[string]int `json:"versions"`
	Errors   []string       `json:"errors"`
	Seconds  []second       `json:"seconds"`
	Started  time.Time      `json:"started"`
}

type loader struct {
	mu     sync.Mutex
	status loadStatus
	stop   chan struct{}
}

func (l *loader) record(start time.Time, code int, version string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.status
	idx := int(time.Since(start).Seconds())
	for len(s.Seconds) <= idx {
		s.Seconds = append(s.Seconds, second{Versions: map[string]int{}})
	}
	ok := err == nil && code < 400
	if ok {
		s.OK++
		s.Seconds[idx].OK++
		if version != "" {
			s.Versions[version]++
			s.Seconds[idx].Versions[version]++
		}
	} else {
		s.Failed++
		s.Seconds[idx].Failed++
		if len(s.Errors) < 20 {
			msg := http.StatusText(code)
			if err != nil {
				msg = err.Error()
			}
			s.Errors = append(s.Errors, msg)
		}
	}
	if err == nil {
		s.Codes[http.StatusText(code)]++
	}
}

func (l *loader) run(req loadRequest) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: maxConcurrency,
		DisableKeepAlives:   !req.KeepAlive,
	}}
	deadline := time.Now().Add(time.Duration(req.MaxSeconds) * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	next := func() (json.RawMessage, bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.status.Sent >= req.MaxRequests || time.Now().After(deadline) {
			return nil, false
		}
		select {
		case <-l.stop:
			return nil, false
		default:
		}
		body := req.Bodies[l.status.Sent%len(req.Bodies)]
		l.status.Sent++
		return body, true
	}
	for i := 0; i < req.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				body, ok := next()
				if !ok {
					return
				}
				resp, err := client.Post(req.URL, "application/json", bytes.NewReader(body))
				code, version := 0, ""
				if err == nil {
					code = resp.StatusCode
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					var answer struct {
						ModelVersion string `json:"model_version"`
					}
					if json.Unmarshal(body, &answer) == nil {
						version = answer.ModelVersion
					}
				}
				l.record(start, code, version, err)
			}
		}()
	}
	wg.Wait()
	l.mu.Lock()
	l.status.Running = false
	l.mu.Unlock()
}

func (l *loader) routes(mux *http.ServeMux) {
	mux.HandleFunc("/load/start", func(w http.ResponseWriter, r *http.Request) {
		var req loadRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.URL == "" || len(req.Bodies) == 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "need a JSON body with url and bodies"})
			return
		}
		req.Concurrency = min(max(req.Concurrency, 1), maxConcurrency)
		req.MaxRequests = min(max(req.MaxRequests, 1), capRequests)
		req.MaxSeconds = min(max(req.MaxSeconds, 1), capSeconds)
		l.mu.Lock()
		if l.status.Running {
			l.mu.Unlock()
			writeJSON(w, http.StatusConflict, map[string]string{"error": "a load run is in progress"})
			return
		}
		l.status = loadStatus{Running: true, Codes: map[string]int{}, Versions: map[string]int{}, Started: time.Now()}
		l.stop = make(chan struct{})
		l.mu.Unlock()
		go l.run(req)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "started"})
	})
	mux.HandleFunc("/load/status", func(w http.ResponseWriter, _ *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		writeJSON(w, http.StatusOK, l.status)
	})
	mux.HandleFunc("/load/stop", func(w http.ResponseWriter, _ *http.Request) {
		l.mu.Lock()
		if l.status.Running {
			close(l.stop)
		}
		l.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"status": "stopping"})
	})
}
