// Command test-http is a tiny static HTTP server for the cluster smoke tests.
//
//	GET /            {"pod": $HOSTNAME, "version": $VERSION, "model_version": $VERSION}
//	GET /healthz     200
//	GET /readyz      200, or 503 when /tmp/unready exists or READY=false
//	    /fail-ready  creates /tmp/unready: the pod turns unready from then on
//	GET /fetch?url=U fetches U from inside the pod: {"status": code, "body": text}
//	                 (proves pod-to-Service traffic and cluster DNS); a POST is
//	                 forwarded as a POST with its body
//	    /load/...    a bounded in-cluster load generator (load.go)
//	POST /hooks      records the body (a webhook receiver; the newest 100 kept)
//	GET  /hooks      {"calls": [bodies, oldest first]}
//
// On SIGTERM or SIGINT it stops accepting connections, finishes the requests
// in flight and exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

const unreadyFile = "/tmp/unready"

type server struct {
	pod, version string
	readyEnv     bool
	unreadyPath  string
	hooksMu      sync.Mutex
	hooks        []json.RawMessage
}

// maxHooks and maxHookBytes bound what the webhook receiver keeps.
const (
	maxHooks     = 100
	maxHookBytes = 64 << 10
)

func newServer() *server {
	host := os.Getenv("HOSTNAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	return &server{
		pod:         host,
		version:     os.Getenv("VERSION"),
		readyEnv:    !strings.EqualFold(os.Getenv("READY"), "false"),
		unreadyPath: unreadyFile,
	}
}

func (s *server) ready() bool {
	if !s.readyEnv {
		return false
	}
	_, err := os.Stat(s.unreadyPath)
	return errors.Is(err, os.ErrNotExist)
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
			return
		}
		// model_version too, so the load generator counts answers per version
		// the way it does for the model server's.
		writeJSON(w, http.StatusOK, map[string]string{
			"pod": s.pod, "version": s.version, "model_version": s.version,
		})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.ready() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready"})
	})
	mux.HandleFunc("/fail-ready", func(w http.ResponseWriter, _ *http.Request) {
		if err := os.WriteFile(s.unreadyPath, nil, 0o644); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "unready"})
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		client := http.Client{Timeout: 5 * time.Second}
		req, err := http.NewRequest(r.Method, r.URL.Query().Get("url"), r.Body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := client.Do(req)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": resp.StatusCode, "body": string(body)})
	})
	mux.HandleFunc("/hooks", func(w http.ResponseWriter, r *http.Request) {
		s.hooksMu.Lock()
		defer s.hooksMu.Unlock()
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, map[string]any{"calls": append([]json.RawMessage{}, s.hooks...)})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxHookBytes))
		if err != nil || !json.Valid(body) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "need a JSON body"})
			return
		}
		s.hooks = append(s.hooks, body)
		if len(s.hooks) > maxHooks {
			s.hooks = s.hooks[len(s.hooks)-maxHooks:]
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "recorded"})
	})
	(&loader{}).routes(mux)
	return mux
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	grace := flag.Duration("grace", 20*time.Second, "longest wait for in-flight requests on SIGTERM")
	flag.Parse()

	s := newServer()
	srv := &http.Server{Addr: *addr, Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("test-http %s listening on %s (pod %s)", s.version, *addr, s.pod)

	select {
	case err := <-errc:
		log.Fatalf("serve: %v", err)
	case <-ctx.Done():
	}
	log.Printf("signal received: draining in-flight requests")
	shutdown, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Printf("shutdown: %v", err)
		os.Exit(1)
	}
	log.Printf("stopped")
}
