package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, 2, "usage: lambdalocal"},
		{"unknown command", []string{"deploy"}, 2, `unknown command "deploy"`},
		{"invoke without function", []string{"invoke"}, 1, "-function is required"},
		{"serve bad flag", []string{"serve", "-nope"}, 1, "flag provided but not defined"},
		{"serve help", []string{"serve", "-h"}, 0, "-instances"},
		{"unreachable DynamoDB", []string{"invoke", "-function", "EchoFunction", "-template", "testdata/template.yaml"}, 1, "does not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, nil, &stdout, &stderr)
			assert.Equal(t, tt.code, code, stderr.String())
			assert.Contains(t, stderr.String(), tt.stderr)
		})
	}
}
