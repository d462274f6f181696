package ddbtest_test

import (
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Run(m)) }

func TestClientAnswers(t *testing.T) {
	_, err := ddbtest.Client(t).ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	assert.Regexp(t, `^http://`, ddbtest.Endpoint(t))
}

func TestOneInstancePerBinary(t *testing.T) {
	assert.Equal(t, ddbtest.Endpoint(t), ddbtest.Endpoint(t))
	assert.Same(t, ddbtest.Client(t), ddbtest.Client(t))
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	a, b := ddbtest.UniqueName(t, "idem"), ddbtest.UniqueName(t, "idem")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, valid, a)
	assert.Regexp(t, `^idem-TestUniqueName-`, a)

	t.Run("long / odd names (π)", func(t *testing.T) {
		long := ddbtest.UniqueName(t, string(make([]byte, 400)))
		assert.Regexp(t, valid, long)
		assert.Regexp(t, valid, ddbtest.UniqueName(t, "x y/z"))
	})
}
