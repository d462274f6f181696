package faultinject_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/faultinject"
)

// lineServer answers each line with "ok <line>" and records the lines it received.
type lineServer struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
}

func newLineServer(t *testing.T) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &lineServer{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					s.mu.Lock()
					s.seen = append(s.seen, sc.Text())
					s.mu.Unlock()
					if _, err := io.WriteString(c, "ok "+sc.Text()+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *lineServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// ask sends one line through conn and reads the answer line.
func ask(conn net.Conn, line string) (string, error) {
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return bufio.NewReader(conn).ReadString('\n')
}

func TestTCPProxy(t *testing.T) {
	srv := newLineServer(t)
	held := make(chan struct{}, 1)
	gate := make(chan struct{})
	rule := func(req []byte) faultinject.TCPFault {
		switch strings.TrimSpace(string(req)) {
		case "reset":
			return faultinject.TCPFault{Kind: faultinject.ConnReset}
		case "lose":
			return faultinject.TCPFault{Kind: faultinject.ResponseLost}
		case "late":
			return faultinject.TCPFault{Kind: faultinject.ResponseLost, Gate: gate, Held: held}
		case "hang":
			return faultinject.TCPFault{Kind: faultinject.Timeout, Held: held}
		}
		return faultinject.TCPFault{}
	}
	p, err := faultinject.NewTCPProxy(srv.ln.Addr().String(), bufio.ScanLines, rule)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	waitHeld := func(t *testing.T) {
		select {
		case <-held:
		case <-time.After(30 * time.Second):
			t.Fatal("the request was never held")
		}
	}

	t.Run("Forward", func(t *testing.T) {
		c := dial(t)
		for _, line := range []string{"a", "b"} {
			got, err := ask(c, line)
			require.NoError(t, err)
			assert.Equal(t, "ok "+line+"\n", got)
		}
	})
	t.Run("ConnResetBeforeForwarding", func(t *testing.T) {
		_, err := ask(dial(t), "reset")
		require.Error(t, err)
		assert.NotContains(t, srv.received(), "reset", "nothing reached the server")
	})
	t.Run("ResponseLostAfterApplying", func(t *testing.T) {
		_, err := ask(dial(t), "lose")
		require.Error(t, err)
		assert.Contains(t, srv.received(), "lose", "the server applied it")
	})
	t.Run("AnswerHeldUntilTheGate", func(t *testing.T) {
		c := dial(t)
		errs := make(chan error, 1)
		go func() {
			_, err := ask(c, "late")
			errs <- err
		}()
		waitHeld(t)
		assert.Contains(t, srv.received(), "late")
		close(gate)
		select {
		case err := <-errs:
			require.Error(t, err, "the answer is lost, not delivered late")
		case <-time.After(30 * time.Second):
			t.Fatal("no answer after the gate opened")
		}
	})
	t.Run("TimeoutHoldsUntilTheClientGivesUp", func(t *testing.T) {
		c := dial(t)
		_, err := io.WriteString(c, "hang\n")
		require.NoError(t, err)
		waitHeld(t)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, err = bufio.NewReader(c).ReadString('\n')
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
		assert.NotContains(t, srv.received(), "hang", "never forwarded")
	})
	t.Run("SetRuleNilForwardsEverything", func(t *testing.T) {
		p.SetRule(nil)
		t.Cleanup(func() { p.SetRule(rule) })
		got, err := ask(dial(t), "reset")
		require.NoError(t, err)
		assert.Equal(t, "ok reset\n", got)
	})
	t.Run("CloseEndsHeldConnections", func(t *testing.T) {
		q, err := faultinject.NewTCPProxy(srv.ln.Addr().String(), bufio.ScanLines, rule)
		require.NoError(t, err)
		c, err := net.Dial("tcp", q.Addr())
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "hang\n")
		require.NoError(t, err)
		waitHeld(t)
		require.NoError(t, q.Close())
		_, err = ask(c, "after")
		require.Error(t, err)
		require.NoError(t, q.Close(), "Close is idempotent")
	})
}

func TestTCPProxyNeedsSplit(t *testing.T) {
	_, err := faultinject.NewTCPProxy("127.0.0.1:1", nil, nil)
	require.Error(t, err)
}
