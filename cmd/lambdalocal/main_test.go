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

func TestValidateCommand(t *testing.T) {
	for _, tc := range []struct {
		name, template string
		code           int
		stdout         string
	}{
		{"valid", "internal/samtemplate/testdata/httpapi.yaml", 0, "valid against goformation's CloudFormation + SAM schema"},
		{"invalid", "internal/samtemplate/testdata/invalid.yaml", 1, "Additional property MemorySise is not allowed"},
		{"missing", "testdata/no-such-template.yaml", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"validate", "-template", tc.template}, nil, &stdout, &stderr)
			assert.Equal(t, tc.code, code, stderr.String())
			assert.Contains(t, stdout.String(), tc.stdout)
			if tc.code != 0 {
				assert.Contains(t, stderr.String(), tc.template)
				assert.NotContains(t, stdout.String(), "valid against")
			}
		})
	}
}
