package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTemplateKeepsPlatformReports: Lambda's START and REPORT lines (duration, billed duration, max memory, init
// duration) are INFO-level system logs, so a SystemLogLevel of WARN drops them; JSON log format is what makes the
// application log-level filter (and the functions' own level field) apply at all.
func TestTemplateKeepsPlatformReports(t *testing.T) {
	tpl := loadTemplate(t)
	for _, fn := range functions(t, tpl) {
		t.Run(fn, func(t *testing.T) {
			assert.Equal(t, "JSON", scalar(fnProperty(tpl, fn, "LoggingConfig", "LogFormat")))
			level := scalar(fnProperty(tpl, fn, "LoggingConfig", "SystemLogLevel"))
			assert.Contains(t, []string{"", "DEBUG", "INFO"}, level,
				"SystemLogLevel %s drops the INFO-level START and REPORT lines", level)
		})
	}
}
