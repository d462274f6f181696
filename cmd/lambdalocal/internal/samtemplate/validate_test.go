package samtemplate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		file     string
		wantErrs []string // substrings, each of which some violation must contain
	}{
		{"httpapi.yaml", nil},
		{"invalid.yaml", []string{
			"Resources.Fn.Properties: Additional property MemorySise is not allowed",
			"Resources.Table.Type",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			errs, err := Validate(data, false)
			require.NoError(t, err)
			if tc.wantErrs == nil {
				assert.Empty(t, errs)
				return
			}
			all := strings.Join(errs, "\n")
			for _, want := range tc.wantErrs {
				assert.Contains(t, all, want)
			}
		})
	}
	t.Run("NotATemplate", func(t *testing.T) {
		_, err := Validate([]byte("Resources: [unclosed"), false)
		require.Error(t, err)
	})
}
