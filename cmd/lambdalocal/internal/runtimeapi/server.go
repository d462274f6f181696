package runtimeapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Header names of the Runtime API.
const (
	HeaderRequestID          = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs         = "Lambda-Runtime-Deadline-Ms"
	HeaderInvokedFunctionArn = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID            = "Lambda-Runtime-Trace-Id"
	HeaderFunctionErrorType  = "Lambda-Runtime-Function-Error-Type"
	// TrailerFunctionErrorBody carries a base64 error document when a streamed
	// response fails midway (aws-lambda-go sends it together with the error type trailer).
	TrailerFunctionErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// Region and AccountID make up the invoked function ARN.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

func (i *instance) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", i.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", i.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", i.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", i.handleInitError)
	return mux
}

func (i *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	first := !i.ready
	if first {
		i.ready = true
		i.readyIn = time.Since(i.spawned)
	}
	readyIn := i.readyIn
	i.mu.Unlock()
	if first {
		i.initTimer.Stop()
		// Logged before the pool counts the instance as ready, so whoever sees Ready() go up finds the line.
		fmt.Fprintf(i.pool.out, "[%s#%d] ready in %s (pid %d)\n",
			i.pool.cfg.Function, i.n, readyIn.Round(100*time.Microsecond), i.cmd.Process.Pid)
		i.pool.markReady()
	}
	// Offer this instance to the pool, then block until an invocation is handed over.
	select {
	case i.pool.idle <- i:
	case <-r.Context().Done():
		return
	case <-i.exited:
		return
	}
	var inv *invocation
	select {
	case inv = <-i.next:
	case <-r.Context().Done():
		return
	case <-i.exited:
		return
	}
	now := time.Now()
	inv.start = now
	inv.deadline = now.Add(i.pool.cfg.Timeout)
	i.mu.Lock()
	if i.dead {
		i.mu.Unlock()
		inv.complete(errorResult(inv.id, "Runtime.ExitError", "RequestId: "+inv.id+" Error: Runtime exited"))
		return
	}
	i.current = inv
	inv.timer = time.AfterFunc(i.pool.cfg.Timeout, func() { i.timedOut(inv) })
	i.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(HeaderRequestID, inv.id)
	h.Set(HeaderDeadlineMs, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(HeaderInvokedFunctionArn, fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, AccountID, i.pool.cfg.Function))
	h.Set(HeaderTraceID, inv.traceID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// claim returns the running invocation if id names it.
func (i *instance) claim(id string) *invocation {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.current == nil || i.current.id != id {
		return nil
	}
	return i.current
}

func (i *instance) finish(inv *invocation, r *Result) {
	i.mu.Lock()
	if i.current == inv {
		i.current = nil
	}
	i.mu.Unlock()
	inv.complete(r)
}

func (i *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	inv := i.claim(id)
	if inv == nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+id)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	if len(body) > MaxPayload {
		i.finish(inv, errorResult(id, "Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayload)))
		writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxPayload))
		return
	}
	// A streamed response that failed midway reports the error in trailers, which
	// are only readable once the body has been consumed.
	if typ := r.Trailer.Get(HeaderFunctionErrorType); typ != "" {
		payload, _ := base64.StdEncoding.DecodeString(r.Trailer.Get(TrailerFunctionErrorBody))
		i.finish(inv, functionError(typ, payload))
		writeStatus(w, http.StatusAccepted, "", "")
		return
	}
	i.finish(inv, &Result{Payload: body})
	writeStatus(w, http.StatusAccepted, "", "")
}

func (i *instance) handleError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	inv := i.claim(id)
	if inv == nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+id)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxPayload))
	i.finish(inv, functionError(r.Header.Get(HeaderFunctionErrorType), body))
	writeStatus(w, http.StatusAccepted, "", "")
}

func (i *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxPayload))
	res := functionError(r.Header.Get(HeaderFunctionErrorType), body)
	i.mu.Lock()
	already := i.ready
	if !already {
		i.initErr = res
	}
	i.mu.Unlock()
	if already {
		writeStatus(w, http.StatusForbidden, "InvalidStateTransition", "init/error after the first /next")
		return
	}
	writeStatus(w, http.StatusAccepted, "", "")
	// The runtime is expected to exit; Lambda does not wait for it to do so.
	go func() {
		select {
		case <-i.exited:
		case <-time.After(time.Second):
			i.kill()
		}
	}()
}

// functionError builds the Invoke result of a reported error. A well-formed error
// document is passed through as Lambda does; otherwise one is made from the
// Lambda-Runtime-Function-Error-Type header.
func functionError(typ string, body []byte) *Result {
	var doc struct {
		ErrorType    *string `json:"errorType"`
		ErrorMessage *string `json:"errorMessage"`
	}
	if err := json.Unmarshal(body, &doc); err == nil && (doc.ErrorType != nil || doc.ErrorMessage != nil) {
		if doc.ErrorType != nil && *doc.ErrorType != "" {
			typ = *doc.ErrorType
		}
		if typ == "" {
			typ = "Runtime.Unknown"
		}
		return &Result{Payload: body, FunctionError: "Unhandled", ErrorType: typ}
	}
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	return errorResult("", typ, "An error occurred but the runtime did not send a readable error document.")
}

func writeStatus(w http.ResponseWriter, code int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code == http.StatusAccepted {
		_, _ = io.WriteString(w, `{"status":"OK"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": errType, "errorMessage": msg})
}
