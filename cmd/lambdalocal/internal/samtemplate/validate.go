package samtemplate

import (
	"fmt"
	"sort"

	"github.com/awslabs/goformation/v7/schema"
	"github.com/xeipuuv/gojsonschema"
)

// samSchema is goformation's JSON schema of CloudFormation templates with the SAM resource types, compiled once
// per Validate call (it is large, and `lambdalocal validate` runs once).
func samSchema() (*gojsonschema.Schema, error) {
	return gojsonschema.NewSchema(gojsonschema.NewStringLoader(schema.SamSchema))
}

// Validate checks template text against goformation's CloudFormation + SAM schema: resource types, property
// names and the types of their values. Intrinsic functions are resolved first as Parse resolves them, so
// `!Ref Table` where a string is expected is a string. It returns one line per violation, sorted, empty when the
// template is valid; err is for text that is not a template at all. It does not check what only CloudFormation
// knows (whether a referenced resource exists, account limits), which cfn-lint does better when installed, and
// the schema is as recent as the goformation release in go.mod: a property AWS added later (a function's own
// LoggingConfig, for one) is reported as not allowed.
func Validate(data []byte, isJSON bool) ([]string, error) {
	resolved, err := resolveIntrinsics(data, isJSON)
	if err != nil {
		return nil, err
	}
	s, err := samSchema()
	if err != nil {
		return nil, fmt.Errorf("compile goformation's SAM schema: %w", err)
	}
	res, err := s.Validate(gojsonschema.NewBytesLoader(resolved))
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	var out []string
	for _, e := range res.Errors() {
		out = append(out, e.String())
	}
	sort.Strings(out)
	return out, nil
}
