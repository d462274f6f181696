package ddblocal_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/ddblocal"
)

func TestStartAnswerStop(t *testing.T) {
	ctx := context.Background()
	var log bytes.Buffer
	inst, err := ddblocal.Start(ctx, ddblocal.Options{Log: &syncWriter{w: &log}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = inst.Stop() })

	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, inst.Endpoint())

	client, err := ddblocal.NewClient(ctx, inst.Endpoint())
	require.NoError(t, err)
	_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("answer"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	require.NoError(t, err)
	out, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	assert.Contains(t, out.TableNames, "answer")

	require.NoError(t, inst.Stop())
	select {
	case <-inst.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	require.NoError(t, inst.Stop(), "Stop is idempotent")

	_, err = client.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	assert.Error(t, err, "the endpoint no longer answers after Stop")
}

func TestStartFixedPortTakenFails(t *testing.T) {
	ctx := context.Background()
	first, err := ddblocal.Start(ctx, ddblocal.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = first.Stop() })

	// A fixed port is never silently swapped for another one.
	_, err = ddblocal.Start(ctx, ddblocal.Options{Port: first.Port(), StartTimeout: 30 * time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already in use")
}

func TestStartWithoutJarIsClear(t *testing.T) {
	_, err := ddblocal.Start(context.Background(), ddblocal.Options{Dir: t.TempDir()})
	require.ErrorIs(t, err, ddblocal.ErrNotInstalled)
	assert.Contains(t, err.Error(), "make deps")
}

func TestStartWithoutJavaIsClear(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := ddblocal.Start(context.Background(), ddblocal.Options{})
	require.ErrorIs(t, err, ddblocal.ErrNoJava)
	assert.Contains(t, err.Error(), "Java 17+")
}

func TestFindDir(t *testing.T) {
	t.Run("env wins", func(t *testing.T) {
		t.Setenv(ddblocal.EnvDir, "/somewhere/else")
		dir, err := ddblocal.FindDir("")
		require.NoError(t, err)
		assert.Equal(t, "/somewhere/else", dir)
	})
	t.Run("walks up to go.mod", func(t *testing.T) {
		t.Setenv(ddblocal.EnvDir, "")
		dir, err := ddblocal.FindDir("")
		require.NoError(t, err)
		assert.FileExists(t, filepath.Join(dir, "DynamoDBLocal.jar"))
		assert.DirExists(t, filepath.Join(dir, "DynamoDBLocal_lib"))
	})
	t.Run("module without the npm install", func(t *testing.T) {
		t.Setenv(ddblocal.EnvDir, "")
		root := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644))
		sub := filepath.Join(root, "a", "b")
		require.NoError(t, os.MkdirAll(sub, 0o755))
		_, err := ddblocal.FindDir(sub)
		require.ErrorIs(t, err, ddblocal.ErrNotInstalled)
	})
}
