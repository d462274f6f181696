package redistest_test

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestClientAnswers(t *testing.T) {
	require.NoError(t, redistest.Client(t).Ping(context.Background()).Err())
	assert.Same(t, redistest.Client(t), redistest.Client(t), "one client per binary")
	own := redistest.NewClient(t)
	assert.NotSame(t, redistest.Client(t), own)
	assert.Equal(t, redistest.Addr(t), own.Options().Addr)
	a, b := redistest.UniquePrefix(t), redistest.UniquePrefix(t)
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^test:TestClientAnswers:[0-9a-f]{12}:$`, a)
}

func TestSplitRESP(t *testing.T) {
	eval := "*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$0\r\n\r\n"
	hmget := "*2\r\n$5\r\nHMGET\r\n$4\r\nk\r\nx\r\n" // a value holding CRLF is one bulk string
	cases := []struct {
		name   string
		stream string
		want   []string
		err    bool
	}{
		{"one request", eval, []string{eval}, false},
		{"pipelined", eval + hmget + eval, []string{eval, hmget, eval}, false},
		{"inline", "PING\r\n" + eval, []string{"PING\r\n", eval}, false},
		{"empty array", "*0\r\n", []string{"*0\r\n"}, false},
		{"truncated", eval[:len(eval)-3], nil, true},
		{"bad length", "*x\r\n", nil, true},
		{"not a bulk string", "*1\r\n:1\r\n", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte at a time, so every split point is met.
			sc := bufio.NewScanner(&oneByte{r: strings.NewReader(c.stream)})
			sc.Split(redistest.SplitRESP)
			var got []string
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.err, sc.Err() != nil, "error: %v", sc.Err())
		})
	}
}

func TestArgs(t *testing.T) {
	args := redistest.Args([]byte("*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$0\r\n\r\n"))
	assert.Equal(t, [][]byte{[]byte("EVALSHA"), []byte("ab"), {}}, args)
	assert.Nil(t, redistest.Args([]byte("PING\r\n")))
	assert.Nil(t, redistest.Args([]byte("*2\r\n$7\r\nEVALSHA\r\n")), "truncated")
}

type oneByte struct{ r *strings.Reader }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
