package gateway

import (
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"time"
)

// Limits of API Gateway's edge that the local server applies before any function runs.
const (
	// MaxHeaderBytes is API Gateway's limit on the request line and headers together (10240 bytes, not adjustable).
	// The gateway answers a request over it 431 itself; Go's server is given more room (ServerMaxHeaderBytes) so
	// that its own plain-text refusal is only for requests far over the limit.
	MaxHeaderBytes = 10240
	// ServerMaxHeaderBytes is what to set as http.Server.MaxHeaderBytes in front of a Gateway.
	ServerMaxHeaderBytes = 64 << 10
	// DefaultBodyTimeout bounds how long the gateway waits for a request body to arrive in full. A client that
	// stops sending gets 408 instead of holding a connection and a goroutine forever.
	DefaultBodyTimeout = 30 * time.Second
)

// Listener wraps ln so that the answers Go's HTTP server writes itself, before any handler runs (431 for headers
// over ServerMaxHeaderBytes, 400 for a malformed request line or header, 501 for an unknown transfer coding),
// come out as API Gateway's JSON errors ({"message": ...}, Content-Type application/json) instead of plain text.
func Listener(ln net.Listener) net.Listener { return edgeListener{ln} }

type edgeListener struct{ net.Listener }

func (l edgeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &edgeConn{Conn: c}, nil
}

type edgeConn struct{ net.Conn }

// serverError is exactly what net/http writes for a request it refuses before any handler: a status line, these
// three header lines, and a plain-text reason; a handler's response always carries Date and Content-Length, so
// it never matches.
var serverError = regexp.MustCompile(`^HTTP/1\.1 ([45][0-9][0-9]) ([^\r\n]*)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n(.*)$`)

func (c *edgeConn) Write(p []byte) (int, error) {
	if m := serverError.FindSubmatch(p); m != nil {
		msg := string(m[3])
		switch string(m[1]) {
		case "431":
			msg = "Request Header Fields Too Large"
		case "400":
			msg = "Bad Request"
		}
		body, _ := json.Marshal(map[string]string{"message": msg})
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 " + string(m[1]) + " " + statusText(m[2]) + "\r\nContent-Type: application/json\r\nConnection: close\r\n")
		b.WriteString("Content-Length: " + itoa(len(body)) + "\r\n\r\n")
		b.Write(body)
		if _, err := c.Conn.Write(b.Bytes()); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// statusText keeps the reason phrase of the status line and drops the detail Go appends to it (": invalid header").
func statusText(line []byte) string {
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		return string(line[:i])
	}
	return string(line)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
