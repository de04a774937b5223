package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/littlewarehouse/warehouse/internal/firehose"
)

// Sink takes the records of accepted events: each one event encoded by
// firehose.Encode. Put returns nil only once the sink holds every record
// durably enough to deliver it (Firehose accepted it, or the local stream
// buffered it); on error the request is answered 503 and the client sends
// it again. The sink keeps the slices.
type Sink interface {
	Put(ctx context.Context, records [][]byte) error
}

// Response is the body of an answer to POST /v1/events.
type Response struct {
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Events   []Accepted   `json:"events,omitempty"` // the accepted events
	Errors   []FieldError `json:"errors,omitempty"` // why the others were rejected
	Error    string       `json:"error,omitempty"`  // why the whole request failed
	// ReplacedChars counts the characters of the accepted events that were
	// not valid UTF-8 and were stored as U+FFFD (see Accepted).
	ReplacedChars int `json:"replaced_chars,omitempty"`
}

// Accepted names the event_id given to the event at Index of the request.
// ReplacedChars, when not 0, says how many characters of the event's
// strings were invalid UTF-8 (a malformed byte, or a \u escape of a lone
// UTF-16 surrogate) and were stored as U+FFFD instead.
type Accepted struct {
	Index         int    `json:"index"`
	EventID       string `json:"event_id"`
	ReplacedChars int    `json:"replaced_chars,omitempty"`
}

// sinkRetryAfter is the Retry-After of a 503 when the sink failed.
const sinkRetryAfter = 5 * time.Second

// Handler serves the collector's HTTP API:
//
//	POST /v1/events   one JSON event or an array of them
//	GET  /healthz     200 {"status":"ok"}
//
// with API keys, CORS, a body limit, per-key rate limits, a limit on failed
// authentications per client and one JSON log line of counts per request.
// Every answer has a JSON body, 404 and 405 included.
type Handler struct {
	cfg   Config
	sink  Sink
	keys  *keyring // nil with NoAuth
	cors  *cors
	limit *limiter     // nil when unlimited
	fails *failLimiter // nil with NoAuth or when off
	log   *slog.Logger
	next  http.Handler
}

// NewHandler returns the API over sink. It uses the HTTP fields of cfg (keys,
// origins, limits, clock, logger); zero fields take their defaults.
func NewHandler(cfg Config, sink Sink) (*Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validateHTTP(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, sink: sink, log: cfg.Logger}
	var err error
	if !cfg.NoAuth {
		if h.keys, err = newKeyring(cfg.APIKeys); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if h.cors, err = newCORS(cfg.AllowedOrigins); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cfg.RatePerSecond > 0 {
		h.limit = newLimiter(cfg.RatePerSecond, cfg.RateBurst, cfg.Now)
	}
	if h.keys != nil && cfg.AuthFailures > 0 {
		h.fails = newFailLimiter(cfg.AuthFailures, cfg.AuthFailureWindow, maxAuthClients, cfg.Now)
	}
	h.next = h.cors.wrap(h.route(h.authenticate(h.rateLimit(http.HandlerFunc(h.events)))))
	return h, nil
}

// route sends POST /v1/events to events and GET or HEAD /healthz to
// health, and answers anything else itself, in JSON: 405 with Allow for
// another method on one of the two paths, 404 for any other path. Paths are
// matched as they are, without the redirects of http.ServeMux.
func (h *Handler) route(events http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow string
		switch r.URL.Path {
		case "/v1/events":
			if r.Method == http.MethodPost {
				events.ServeHTTP(w, r)
				return
			}
			allow = "POST"
		case "/healthz":
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				h.health(w, r)
				return
			}
			allow = "GET, HEAD"
		default:
			infoFrom(r).reason = "no such path"
			writeError(w, http.StatusNotFound, "no such path: the API is POST /v1/events and GET /healthz")
			return
		}
		infoFrom(r).reason = "method not allowed"
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed on "+r.URL.Path+"; allowed: "+allow)
	})
}

// reqInfo collects what the access log says about a request.
type reqInfo struct {
	keyID              string
	accepted, rejected int
	replaced           int // characters of accepted events stored as U+FFFD
	reason             string
}

type infoKey struct{}

func infoFrom(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler. It caps the body and logs one line per
// request: method, path, status, counts, the key's id and a reason — never
// the body, the headers or the key.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	info := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	sw := &statusWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, r)

	level := slog.LevelInfo
	switch {
	case r.URL.Path == "/healthz" && sw.status == http.StatusOK:
		level = slog.LevelDebug
	case sw.status >= 500:
		level = slog.LevelError
	case sw.status >= 400:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", sw.status),
		slog.Int64("duration_ms", time.Since(start).Milliseconds()),
	}
	if info.keyID != "" {
		attrs = append(attrs, slog.String("key_id", info.keyID))
	}
	if r.URL.Path == "/v1/events" && r.Method == http.MethodPost {
		attrs = append(attrs, slog.Int("accepted", info.accepted), slog.Int("rejected", info.rejected))
		if info.replaced > 0 {
			attrs = append(attrs, slog.Int("replaced_chars", info.replaced))
		}
	}
	if info.reason != "" {
		attrs = append(attrs, slog.String("reason", info.reason))
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.keys == nil {
			next.ServeHTTP(w, r)
			return
		}
		client := clientOf(r)
		if wait := h.fails.wait(client); wait > 0 {
			infoFrom(r).reason = "too many failed authentications"
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; retry after the Retry-After seconds")
			return
		}
		presented := r.Header.Get("X-Api-Key")
		id, ok := h.keys.match(presented)
		if !ok {
			h.fails.fail(client)
			info := infoFrom(r)
			info.reason = "invalid api key"
			if presented == "" {
				info.reason = "missing api key"
			}
			writeError(w, http.StatusUnauthorized, "missing or invalid X-Api-Key")
			return
		}
		infoFrom(r).keyID = id
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.limit == nil {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := h.limit.take(infoFrom(r).keyID); !ok {
			infoFrom(r).reason = "rate limited"
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
			writeError(w, http.StatusTooManyRequests, "rate limit exceeded for this API key; retry after the Retry-After seconds")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// events serves POST /v1/events: it refuses a malformed request as a
// whole (requestError), else puts the valid events into the sink in one
// call and answers 200 if all were accepted, 207 if some were rejected,
// 400 if none was valid, 503 if the sink refused them.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r)
	fail := func(e *requestError) {
		info.reason = e.reason
		writeError(w, e.status, e.msg)
	}
	items, rerr := h.readEvents(r)
	if rerr != nil {
		fail(rerr)
		return
	}
	resp, records, rerr := h.encodeEvents(items)
	if rerr != nil {
		fail(rerr)
		return
	}
	info.rejected = resp.Rejected
	if len(records) == 0 {
		info.reason = "no valid events"
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}

	// Finish the put even if the client goes away: it may already be partly
	// delivered, and a clean end is easier to reason about.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.SinkTimeout)
	defer cancel()
	if err := h.sink.Put(ctx, records); err != nil {
		h.log.Error("sink refused events", "events", len(records), "err", err)
		info.reason = "sink unavailable"
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(sinkRetryAfter)))
		resp.Error = "the events could not be stored; send the request again after Retry-After seconds"
		resp.Events, resp.ReplacedChars = nil, 0
		writeJSON(w, http.StatusServiceUnavailable, resp)
		return
	}
	resp.Accepted = len(records)
	info.accepted, info.replaced = resp.Accepted, resp.ReplacedChars
	status := http.StatusOK
	if resp.Rejected > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, resp)
}

// requestError is why a request is refused as a whole: the HTTP status,
// the reason logged and the message sent.
type requestError struct {
	status      int
	reason, msg string
}

// readEvents checks a POST /v1/events request's content type, encoding and
// size and returns its events, undecoded: at least one and at most
// MaxEvents.
func (h *Handler) readEvents(r *http.Request) ([]json.RawMessage, *requestError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &requestError{http.StatusUnsupportedMediaType, "content type", "Content-Type must be application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &requestError{http.StatusUnsupportedMediaType, "charset", "the body must be UTF-8: send Content-Type application/json with no charset or with charset=utf-8"}
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil, &requestError{http.StatusUnsupportedMediaType, "content encoding", "Content-Encoding is not supported; send the body uncompressed"}
	}
	tooLarge := &requestError{http.StatusRequestEntityTooLarge, "body too large", fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBodyBytes)}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tl *http.MaxBytesError
		if errors.As(err, &tl) {
			return nil, tooLarge
		}
		return nil, &requestError{http.StatusBadRequest, "read body", "could not read the body"}
	}
	items, err := splitBody(body)
	if err != nil {
		return nil, &requestError{http.StatusBadRequest, "malformed body", err.Error()}
	}
	switch {
	case len(items) == 0:
		return nil, &requestError{http.StatusBadRequest, "no events", "no events in the array"}
	case len(items) > h.cfg.MaxEvents:
		return nil, &requestError{http.StatusBadRequest, "too many events", fmt.Sprintf("%d events in one request, at most %d", len(items), h.cfg.MaxEvents)}
	}
	return items, nil
}

// encodeEvents validates each event of a request, stamps the valid ones
// with an event id and the request's received_at, and returns them as
// records, in order, with the response so far: the accepted events and
// the rejected ones with their errors. An event whose record would be
// over firehose.MaxRecordBytes is rejected.
func (h *Handler) encodeEvents(items []json.RawMessage) (Response, [][]byte, *requestError) {
	receivedAt := h.cfg.Now().UTC().Truncate(time.Millisecond)
	var resp Response
	records := make([][]byte, 0, len(items))
	for i, item := range items {
		ev, errs := parseEvent(i, item)
		if len(errs) > 0 {
			resp.Rejected++
			resp.Errors = append(resp.Errors, errs...)
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			return Response{}, nil, &requestError{http.StatusInternalServerError, "event id", "could not make event ids"}
		}
		ev.EventID, ev.ReceivedAt = id.String(), receivedAt
		replaced := countReplaced(item)
		rec := firehose.Encode(&ev)
		if len(rec) > firehose.MaxRecordBytes {
			resp.Rejected++
			resp.Errors = append(resp.Errors, FieldError{Index: i, Reason: fmt.Sprintf("event too large: %d bytes as a record, at most %d", len(rec), firehose.MaxRecordBytes)})
			continue
		}
		records = append(records, rec)
		resp.Events = append(resp.Events, Accepted{Index: i, EventID: ev.EventID, ReplacedChars: replaced})
		resp.ReplacedChars += replaced
	}
	return resp, records, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// errorBody is the body of an answer that concerns the whole request.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{msg})
}
