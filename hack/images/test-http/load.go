package main

// A bounded load generator that runs inside the cluster, so tests can send
// traffic to a Service's cluster IP and DNS name the way real clients do.
//
//	POST /load/start {"url", "bodies", "concurrency", "maxRequests", "maxSeconds", "keepAlive", "rate"}
//	                   bodies are sent round-robin; without keepAlive every request
//	                   opens a new connection, so kube-proxy balances requests, not
//	                   connections. Without rate, `concurrency` clients each send
//	                   the next request when the last is answered (closed loop); with
//	                   rate, requests start at that many per second whatever the
//	                   answers (open loop, as independent users arrive), at most
//	                   `concurrency` in flight: an arrival beyond that is counted as
//	                   skipped, never queued in the client. With keepAlive and
//	                   closeEvery N, every Nth request closes its connection after
//	                   its answer, as clients with a connection lifetime do: the
//	                   cost of connecting is shared by N requests and kube-proxy
//	                   still spreads the load over new pods within seconds
//	                   With truths (one per body) and feedbackUrl, each answer's
//	                   "id" is paired with its body's truth and posted as ground
//	                   truth, 50 at a time: {"feedback": [{"id", "truth"}, ...]}
//	GET  /load/status  counts by HTTP status and by the answer's model_version,
//	                   per second, with a histogram of the successful requests'
//	                   latency, the 503s that carried Retry-After, plus the first errors
//	POST /load/stop
//
// Every run is bounded by maxRequests and maxSeconds (both capped).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxConcurrency = 64
	maxInFlight    = 2048 // the open loop's bound on requests in flight
	capRequests    = 1_000_000
	capSeconds     = 900
	capRate        = 5_000
)

// latencyBoundsMs are the upper bounds of the latency histogram's buckets; a last
// bucket counts everything slower.
var latencyBoundsMs = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000}

type loadRequest struct {
	URL         string            `json:"url"`
	Bodies      []json.RawMessage `json:"bodies"`
	Concurrency int               `json:"concurrency"`
	MaxRequests int               `json:"maxRequests"`
	MaxSeconds  int               `json:"maxSeconds"`
	KeepAlive   bool              `json:"keepAlive"`
	Rate        int               `json:"rate"`
	CloseEvery  int               `json:"closeEvery"`
	Truths      []json.RawMessage `json:"truths"`
	FeedbackURL string            `json:"feedbackUrl"`
}

// feedbackBatch is how many labels go in one feedback POST.
const feedbackBatch = 50

type label struct {
	ID    string          `json:"id"`
	Truth json.RawMessage `json:"truth"`
}

type second struct {
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Skipped  int            `json:"skipped"`
	Versions map[string]int `json:"versions"`
	// LatencyMs counts successful requests by latencyBoundsMs bucket.
	LatencyMs []int `json:"latencyMs"`
}

type loadStatus struct {
	Running bool `json:"running"`
	Sent    int  `json:"sent"`
	OK      int  `json:"ok"`
	Failed  int  `json:"failed"`
	Skipped int  `json:"skipped"`
	// RetryAfter counts the 503 answers that carried a Retry-After header.
	RetryAfter int            `json:"retryAfter"`
	BoundsMs   []float64      `json:"latencyBoundsMs"`
	Codes      map[string]int `json:"codes"`
	Versions   map[string]int `json:"versions"`
	Errors     []string       `json:"errors"`
	Seconds    []second       `json:"seconds"`
	Started    time.Time      `json:"started"`
	// Feedback counts the labels posted, by the HTTP status of their POST.
	Feedback map[string]int `json:"feedback"`
}

type loader struct {
	mu      sync.Mutex
	status  loadStatus
	stop    chan struct{}
	pending []label
}

// label queues one answer's truth; a full batch is returned for the caller to post.
func (l *loader) label(id string, truth json.RawMessage) []label {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, label{ID: id, Truth: truth})
	if len(l.pending) < feedbackBatch {
		return nil
	}
	batch := l.pending
	l.pending = nil
	return batch
}

// postFeedback sends one batch of labels and counts it by the answer's status.
func (l *loader) postFeedback(client *http.Client, url string, batch []label) {
	if len(batch) == 0 {
		return
	}
	data, _ := json.Marshal(map[string][]label{"feedback": batch})
	key := "error"
	resp, err := client.Post(url, "application/json", bytes.NewReader(data))
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		key = http.StatusText(resp.StatusCode)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.Feedback[key] += len(batch)
}

// at is the second of the run `now` falls in, created as needed; l.mu is held.
func (l *loader) at(start, now time.Time) *second {
	s := &l.status
	idx := int(now.Sub(start).Seconds())
	for len(s.Seconds) <= idx {
		s.Seconds = append(s.Seconds, second{
			Versions: map[string]int{}, LatencyMs: make([]int, len(latencyBoundsMs)+1),
		})
	}
	return &s.Seconds[idx]
}

func (l *loader) skip(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.Skipped++
	l.at(start, time.Now()).Skipped++
}

// record counts one answer in the second it was sent.
func (l *loader) record(start, sent time.Time, code int, retryAfter bool, version string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.status
	sec := l.at(start, sent)
	ok := err == nil && code < 400
	if ok {
		s.OK++
		sec.OK++
		ms := float64(time.Since(sent).Microseconds()) / 1000
		bucket := len(latencyBoundsMs)
		for i, bound := range latencyBoundsMs {
			if ms <= bound {
				bucket = i
				break
			}
		}
		sec.LatencyMs[bucket]++
		if version != "" {
			s.Versions[version]++
			sec.Versions[version]++
		}
	} else {
		s.Failed++
		sec.Failed++
		if code == http.StatusServiceUnavailable && retryAfter {
			s.RetryAfter++
		}
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
	inFlight := req.Concurrency
	if req.Rate > 0 {
		inFlight = maxInFlight
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: inFlight,
		DisableKeepAlives:   !req.KeepAlive,
	}}
	deadline := time.Now().Add(time.Duration(req.MaxSeconds) * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	next := func() (int, bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.status.Sent >= req.MaxRequests || time.Now().After(deadline) {
			return 0, false
		}
		select {
		case <-l.stop:
			return 0, false
		default:
		}
		index := l.status.Sent % len(req.Bodies)
		l.status.Sent++
		return index, true
	}
	labelled := req.FeedbackURL != "" && len(req.Truths) == len(req.Bodies)
	var count atomic.Int64
	send := func(index int) {
		body := req.Bodies[index]
		sent := time.Now()
		post, _ := http.NewRequest(http.MethodPost, req.URL, bytes.NewReader(body))
		post.Header.Set("Content-Type", "application/json")
		post.Close = req.CloseEvery > 0 && count.Add(1)%int64(req.CloseEvery) == 0
		resp, err := client.Do(post)
		code, version, retryAfter := 0, "", false
		if err == nil {
			code = resp.StatusCode
			retryAfter = resp.Header.Get("Retry-After") != ""
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var answer struct {
				ModelVersion string `json:"model_version"`
				ID           string `json:"id"`
			}
			if json.Unmarshal(body, &answer) == nil {
				version = answer.ModelVersion
				if labelled && code == http.StatusOK && answer.ID != "" {
					l.postFeedback(client, req.FeedbackURL, l.label(answer.ID, req.Truths[index]))
				}
			}
		}
		l.record(start, sent, code, retryAfter, version, err)
	}
	if req.Rate > 0 {
		l.openLoop(req, start, next, send, &wg)
	} else {
		for i := 0; i < req.Concurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					index, ok := next()
					if !ok {
						return
					}
					send(index)
				}
			}()
		}
	}
	wg.Wait()
	if labelled {
		l.mu.Lock()
		rest := l.pending
		l.pending = nil
		l.mu.Unlock()
		l.postFeedback(client, req.FeedbackURL, rest)
	}
	l.mu.Lock()
	l.status.Running = false
	l.mu.Unlock()
}

// openLoop starts request n at start + n/rate, in its own goroutine, unless
// maxInFlight are outstanding: then that arrival is skipped and counted, so a
// slow server shows as skipped arrivals instead of a slower offered rate.
func (l *loader) openLoop(req loadRequest, start time.Time, next func() (int, bool),
	send func(int), wg *sync.WaitGroup) {
	slots := make(chan struct{}, maxInFlight)
	interval := time.Second / time.Duration(req.Rate)
	for n := 0; ; n++ {
		time.Sleep(time.Until(start.Add(time.Duration(n) * interval)))
		index, ok := next()
		if !ok {
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			l.skip(start)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			send(index)
		}()
	}
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
		req.Rate = min(max(req.Rate, 0), capRate)
		l.mu.Lock()
		if l.status.Running {
			l.mu.Unlock()
			writeJSON(w, http.StatusConflict, map[string]string{"error": "a load run is in progress"})
			return
		}
		l.status = loadStatus{Running: true, Codes: map[string]int{}, Versions: map[string]int{},
			BoundsMs: latencyBoundsMs, Started: time.Now(), Feedback: map[string]int{}}
		l.stop = make(chan struct{})
		l.pending = nil
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
