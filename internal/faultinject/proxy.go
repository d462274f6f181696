package faultinject

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

// Proxy returns a reverse proxy to the DynamoDB endpoint target (such as "http://127.0.0.1:8000") that applies the
// injector's rules, for a process of its own (a Lambda function under lambdalocal) pointed at it through
// AWS_ENDPOINT_URL_DYNAMODB. next carries the forwarded requests (nil: http.DefaultTransport).
//
// Faults look to the client as they would from DynamoDB or the network: Throttle and ServerError are DynamoDB
// error answers; ConnReset and ResponseLost reset the client's TCP connection (SO_LINGER 0), after reading the
// whole request; Timeout and a held Latency request answer nothing until the client gives up. A request whose
// client goes away while it is held (the process was killed) is not forwarded.
func (in *Injector) Proxy(target string, next http.RoundTripper) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, errors.New("faultinject: proxy target must be an absolute URL such as http://127.0.0.1:8000")
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the client signed its Host header
		},
		Transport: in.RoundTripper(next),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var fe *Error
			switch {
			case errors.As(err, &fe):
				resetConnection(w)
			case r.Context().Err() != nil:
				// The client is gone; there is nobody to answer.
			default:
				w.WriteHeader(http.StatusBadGateway)
			}
		},
	}, nil
}

// resetConnection closes the client's connection with a TCP RST rather than an orderly FIN, as a peer or a
// middlebox that drops the connection would.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
