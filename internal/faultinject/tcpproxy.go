package faultinject

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// TCPFault is what a TCPProxy does to one request. Kind is one of None, ConnReset, ResponseLost and Timeout; the
// HTTP-only kinds (Latency, Throttle, ServerError) are not supported by the TCP proxy and panic.
//
//	None          the request is forwarded and its answer passed back
//	ConnReset     the client's connection is reset before the request is forwarded: nothing applied
//	ResponseLost  the request is forwarded; once the server's answer starts to arrive, the client's connection is
//	              reset instead of answering (after Gate is closed, when set): applied, answer lost
//	Timeout       the request is held, never forwarded, until the client closes its connection (its timeout) or
//	              the proxy closes: nothing applied
type TCPFault struct {
	Kind Kind
	// Gate, when not nil, holds a ResponseLost answer until the gate is closed or the client goes away, so the
	// client times out on a request the server applied.
	Gate <-chan struct{}
	// Held, when not nil, receives one value when a Timeout request starts hanging or a ResponseLost answer
	// starts waiting on Gate, so a test knows the request is in flight. Use a buffered channel: a send that
	// would block is dropped rather than stall the proxy.
	Held chan<- struct{}
}

// TCPRule decides the fault of a request: the bytes of one request, as sent, delimited by the proxy's split
// function.
// It is called from the connections' goroutines, concurrently.
type TCPRule func(req []byte) TCPFault

// TCPProxy forwards TCP connections from a loopback listener to a target address and injects faults per request:
// the client's byte stream is cut into requests by a bufio.SplitFunc (such as redistest.SplitRESP for Redis), and
// a TCPRule picks each one's fault. It suits request/response protocols whose client waits for each answer before
// sending the next request; a pipelined batch is forwarded request by request, but a ResponseLost then loses the
// first answer bytes that arrive, whichever request they belong to.
type TCPProxy struct {
	ln     net.Listener
	target string
	split  bufio.SplitFunc

	rule    atomic.Pointer[TCPRule]
	closed  chan struct{}
	closeMu sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewTCPProxy listens on a free loopback port and forwards every connection to target (host:port). rule may be nil
// (forward everything) and changed later with SetRule.
func NewTCPProxy(target string, split bufio.SplitFunc, rule TCPRule) (*TCPProxy, error) {
	if split == nil {
		return nil, errors.New("faultinject: TCPProxy needs a split function to frame requests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultinject: %w", err)
	}
	p := &TCPProxy{ln: ln, target: target, split: split, closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.SetRule(rule)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address, host:port on 127.0.0.1.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// SetRule replaces the rule for the requests that arrive from now on; nil forwards everything.
func (p *TCPProxy) SetRule(rule TCPRule) {
	if rule == nil {
		rule = func([]byte) TCPFault { return TCPFault{} }
	}
	p.rule.Store(&rule)
}

// Close stops listening, resets every open connection and waits for the proxy's goroutines to end.
func (p *TCPProxy) Close() error {
	p.closeMu.Lock()
	select {
	case <-p.closed:
		p.closeMu.Unlock()
		return nil
	default:
	}
	close(p.closed)
	err := p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.closeMu.Unlock()
	p.wg.Wait()
	return err
}

// track registers c for Close; it reports false when the proxy is closing.
func (p *TCPProxy) track(c net.Conn) bool {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	select {
	case <-p.closed:
		return false
	default:
		p.conns[c] = struct{}{}
		return true
	}
}

func (p *TCPProxy) untrack(c net.Conn) {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	delete(p.conns, c)
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(client)
		}()
	}
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	// lose is set when the next answer is to be lost (ResponseLost), with its gate and held channel.
	mu   sync.Mutex
	lose bool
	gate <-chan struct{}
	held chan<- struct{}
	once sync.Once
	dead chan struct{} // closed by reset
}

// reset closes the client's connection with a TCP RST, as a peer or middlebox that drops it would, and closes the
// server's side.
func (l *link) reset() {
	l.once.Do(func() {
		if tc, ok := l.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = l.client.Close()
		_ = l.server.Close()
		close(l.dead)
	})
}

func (p *TCPProxy) serve(client net.Conn) {
	if !p.track(client) {
		_ = client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	defer p.untrack(server)
	l := &link{client: client, server: server, dead: make(chan struct{})}
	defer l.reset()

	done := make(chan struct{})
	go func() {
		defer close(done)
		p.answers(l)
	}()
	p.requests(l)
	<-done
}

// requests reads the client's requests and forwards them per the rule.
func (p *TCPProxy) requests(l *link) {
	defer l.reset()
	sc := bufio.NewScanner(l.client)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	// The request is forwarded as it was sent: the advance, not the token (ScanLines' token lacks the newline).
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		adv, tok, err := p.split(data, atEOF)
		if tok != nil {
			tok = data[:adv]
		}
		return adv, tok, err
	})
	for sc.Scan() {
		req := sc.Bytes()
		f := (*p.rule.Load())(req)
		switch f.Kind {
		case None:
		case ConnReset:
			return
		case Timeout:
			signal(f.Held)
			// Hold until the client gives up and closes its connection, or the proxy closes it; nothing is
			// forwarded, and whatever the client sends meanwhile is dropped.
			_, _ = io.Copy(io.Discard, l.client)
			return
		case ResponseLost:
			l.mu.Lock()
			l.lose, l.gate, l.held = true, f.Gate, f.Held
			l.mu.Unlock()
		default:
			panic(fmt.Sprintf("faultinject: TCPProxy does not support %s", f.Kind))
		}
		if _, err := l.server.Write(req); err != nil {
			return
		}
	}
}

// answers passes the server's answers back, unless an answer is to be lost.
func (p *TCPProxy) answers(l *link) {
	defer l.reset()
	buf := make([]byte, 32<<10)
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			l.mu.Lock()
			lose, gate, held := l.lose, l.gate, l.held
			l.mu.Unlock()
			if lose {
				if gate != nil {
					signal(held)
					select {
					case <-gate:
					case <-l.dead: // the client gave up first
					}
				}
				return // reset by the deferred call: the client never sees the answer
			}
			if _, werr := l.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func signal(ch chan<- struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}
