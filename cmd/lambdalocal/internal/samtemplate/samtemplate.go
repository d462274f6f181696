// Package samtemplate reads the parts of an AWS SAM template that the local runner
// needs: Go functions on a provided.* runtime with their API Gateway events (REST
// `Type: Api` and HTTP API `Type: HttpApi`), and the DynamoDB tables to create.
//
// goformation's intrinsic processor turns the YAML (short tags such as !Ref, !GetAtt
// and !Sub included) into plain JSON. Its Ref only resolves parameters, so it is
// overridden here with what a local stack needs: Ref to a resource gives its logical
// ID, which is also the local table name (as the runner creates the tables). The resolved JSON is
// then decoded into small tolerant structs rather than goformation's generated types:
// those lack LoggingConfig, do not apply Globals, pick an event's type by a JSON-length
// heuristic, and reject an environment value written as a YAML number.
package samtemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// Local stand-ins for the pseudo parameters a deployed stack would have.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
	StackName = "idemkit-local"
)

// Lambda's defaults when a template sets neither the function nor Globals.
const (
	DefaultTimeout    = 3 * time.Second
	DefaultMemorySize = 128
)

// Template is what the runner serves.
type Template struct {
	// Dir is the template's directory: CodeUri paths are relative to it.
	Dir string
	// Functions by logical ID.
	Functions map[string]*Function
	// Tables by logical ID.
	Tables map[string]*Table
	// BinaryMediaTypes from Globals.Api and every AWS::Serverless::Api, "~1" already turned into "/".
	BinaryMediaTypes []string
	// Warnings lists what the template declares but the runner cannot serve locally.
	Warnings []string
}

// Function is an AWS::Serverless::Function with Globals applied.
type Function struct {
	Name       string // logical ID
	CodeURI    string // directory of the Go main package, relative to Template.Dir
	Handler    string
	Runtime    string
	Timeout    time.Duration
	MemorySize int
	// Environment holds the function's variables (Globals merged in, function wins).
	Environment map[string]string
	// LogFormat ("Text"/"JSON") and ApplicationLogLevel come from LoggingConfig.
	LogFormat           string
	ApplicationLogLevel string
	SystemLogLevel      string
	Routes              []Route
}

// Route is one `Type: Api` (REST API) or `Type: HttpApi` (HTTP API) event of a function.
type Route struct {
	Function string
	Event    string // the event's name in the template
	// Path is the resource path template, e.g. /payments/{id} or /{proxy+}, or DefaultRoute for an HttpApi
	// event without Path and Method (the route of every request no other route matches).
	Path   string
	Method string // upper case; ANY matches every method
	// HTTPAPI marks an HttpApi event. PayloadFormat is its PayloadFormatVersion: "2.0" (SAM's default) or
	// "1.0". Both are empty for a REST event, whose payload is always 1.0.
	HTTPAPI       bool
	PayloadFormat string
}

// DefaultRoute is the Path of an HttpApi event that declares neither Path nor Method: API Gateway's $default
// route, which receives every request no other route of the API matches.
const DefaultRoute = "$default"

// Table is a DynamoDB table to create locally, named after its logical ID.
type Table struct {
	Name   string
	Create *dynamodb.CreateTableInput
	// TTLAttribute is the TimeToLiveSpecification attribute when TTL is enabled, else "".
	TTLAttribute string
}

// SortedFunctions returns the functions ordered by name, for stable output.
func (t *Template) SortedFunctions() []*Function {
	out := make([]*Function, 0, len(t.Functions))
	for _, f := range t.Functions {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SortedTables returns the tables ordered by name.
func (t *Template) SortedTables() []*Table {
	out := make([]*Table, 0, len(t.Tables))
	for _, tb := range t.Tables {
		out = append(out, tb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Routes returns every route of every function.
func (t *Template) Routes() []Route {
	var out []Route
	for _, f := range t.SortedFunctions() {
		out = append(out, f.Routes...)
	}
	return out
}

// Open reads and parses a template file (YAML, or JSON when the name ends in .json).
func Open(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data, strings.HasSuffix(path, ".json"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Dir = filepath.Dir(abs)
	return t, nil
}

// Parse parses template text. Dir is left empty.
func Parse(data []byte, isJSON bool) (*Template, error) {
	resolved, err := resolveIntrinsics(data, isJSON)
	if err != nil {
		return nil, err
	}
	var raw rawTemplate
	dec := json.NewDecoder(bytes.NewReader(resolved))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode template: %w", err)
	}
	return build(&raw)
}

// resolveIntrinsics turns template text (YAML, or JSON when isJSON) into JSON with the intrinsic functions
// resolved as the local runner needs them: Ref, Fn::GetAtt and Fn::Sub by this package's handlers, the others as
// goformation resolves them. Parse and Validate both read the result, so they see the same template.
func resolveIntrinsics(data []byte, isJSON bool) ([]byte, error) {
	opts := &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
		"Ref":        ref,
		"Fn::GetAtt": getAtt,
		"Fn::Sub":    sub,
	}}
	var (
		resolved []byte
		err      error
	)
	if isJSON {
		resolved, err = intrinsics.ProcessJSON(data, opts)
	} else {
		resolved, err = intrinsics.ProcessYAML(data, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return resolved, nil
}

func build(raw *rawTemplate) (*Template, error) {
	t := &Template{Functions: map[string]*Function{}, Tables: map[string]*Table{}}
	var g rawFunctionProps
	if raw.Globals.Function != nil {
		g = *raw.Globals.Function
	}
	if raw.Globals.Api != nil {
		t.BinaryMediaTypes = append(t.BinaryMediaTypes, mediaTypes(raw.Globals.Api.BinaryMediaTypes)...)
	}
	names := make([]string, 0, len(raw.Resources))
	for name := range raw.Resources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		res := raw.Resources[name]
		var err error
		switch res.Type {
		case "AWS::Serverless::Function":
			err = t.addFunction(name, res.Properties, &g)
		case "AWS::DynamoDB::Table":
			err = t.addTable(name, res.Properties)
		case "AWS::Serverless::SimpleTable":
			err = t.addSimpleTable(name, res.Properties)
		case "AWS::Serverless::Api":
			var api rawAPIProps
			if err = json.Unmarshal(orEmpty(res.Properties), &api); err == nil {
				t.BinaryMediaTypes = append(t.BinaryMediaTypes, mediaTypes(api.BinaryMediaTypes)...)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("resource %s (%s): %w", name, res.Type, err)
		}
	}
	return t, nil
}

func (t *Template) addFunction(name string, props json.RawMessage, g *rawFunctionProps) error {
	var p rawFunctionProps
	if err := json.Unmarshal(orEmpty(props), &p); err != nil {
		return err
	}
	f := &Function{
		Name:        name,
		CodeURI:     first(p.CodeURI, g.CodeURI),
		Handler:     first(p.Handler, g.Handler),
		Runtime:     first(p.Runtime, g.Runtime),
		Timeout:     DefaultTimeout,
		MemorySize:  DefaultMemorySize,
		Environment: map[string]string{},
	}
	if v := firstInt(p.Timeout, g.Timeout); v > 0 {
		f.Timeout = time.Duration(v) * time.Second
	}
	if v := firstInt(p.MemorySize, g.MemorySize); v > 0 {
		f.MemorySize = v
	}
	for _, env := range []*rawEnvironment{g.Environment, p.Environment} {
		if env == nil {
			continue
		}
		for k, v := range env.Variables {
			if v == nil {
				delete(f.Environment, k) // !Ref AWS::NoValue removes the variable
				continue
			}
			f.Environment[k] = string(*v)
		}
	}
	for _, lc := range []*rawLoggingConfig{g.LoggingConfig, p.LoggingConfig} {
		if lc == nil {
			continue
		}
		f.LogFormat = first(lc.LogFormat, flexString(f.LogFormat))
		f.ApplicationLogLevel = first(lc.ApplicationLogLevel, flexString(f.ApplicationLogLevel))
		f.SystemLogLevel = first(lc.SystemLogLevel, flexString(f.SystemLogLevel))
	}
	if first(p.PackageType, g.PackageType) == "Image" || p.ImageURI != "" {
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s: image functions are not run locally (only Go on provided.* runtimes)", name))
		return nil
	}
	if !strings.HasPrefix(f.Runtime, "provided") && f.Runtime != "go1.x" {
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s: runtime %q is not run locally (only Go on provided.* runtimes)", name, f.Runtime))
		return nil
	}
	if f.CodeURI == "" {
		return fmt.Errorf("CodeUri must name the Go main package directory")
	}
	eventNames := make([]string, 0, len(p.Events))
	for ev := range p.Events {
		eventNames = append(eventNames, ev)
	}
	sort.Strings(eventNames)
	for _, ev := range eventNames {
		e := p.Events[ev]
		switch e.Type {
		case "Api":
			var api rawAPIEvent
			if err := json.Unmarshal(orEmpty(e.Properties), &api); err != nil {
				return fmt.Errorf("event %s: %w", ev, err)
			}
			if !strings.HasPrefix(api.Path, "/") {
				return fmt.Errorf("event %s: Path %q must start with /", ev, api.Path)
			}
			method := strings.ToUpper(string(api.Method))
			if method == "" {
				return fmt.Errorf("event %s: Method is required", ev)
			}
			f.Routes = append(f.Routes, Route{Function: name, Event: ev, Path: api.Path, Method: method})
		case "HttpApi":
			rt, err := httpAPIRoute(name, ev, e.Properties)
			if err != nil {
				return fmt.Errorf("event %s: %w", ev, err)
			}
			f.Routes = append(f.Routes, rt)
		default:
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s: event %s of type %s is not served locally (only Type: Api and Type: HttpApi)", name, ev, e.Type))
		}
	}
	t.Functions[name] = f
	return nil
}

// httpAPIRoute reads an HttpApi event as SAM does: Path and Method name a route; neither names the $default
// route; PayloadFormatVersion defaults to 2.0.
func httpAPIRoute(fn, ev string, props json.RawMessage) (Route, error) {
	var api rawHTTPAPIEvent
	if err := json.Unmarshal(orEmpty(props), &api); err != nil {
		return Route{}, err
	}
	rt := Route{Function: fn, Event: ev, HTTPAPI: true, PayloadFormat: string(api.PayloadFormatVersion)}
	switch rt.PayloadFormat {
	case "", "2", "2.0": // an unquoted YAML 2.0 is the number 2
		rt.PayloadFormat = "2.0"
	case "1", "1.0":
		rt.PayloadFormat = "1.0"
	default:
		return Route{}, fmt.Errorf("PayloadFormatVersion %q: API Gateway knows 1.0 and 2.0", rt.PayloadFormat)
	}
	path, method := string(api.Path), strings.ToUpper(string(api.Method))
	switch {
	case path == "" && method == "":
		rt.Path, rt.Method = DefaultRoute, "ANY"
	case path == "" || method == "":
		return Route{}, fmt.Errorf("an HttpApi event needs both Path and Method, or neither for the $default route")
	case !strings.HasPrefix(path, "/"):
		return Route{}, fmt.Errorf("path %q must start with /", path)
	default:
		rt.Path, rt.Method = path, method
	}
	return rt, nil
}

func (t *Template) addTable(name string, props json.RawMessage) error {
	var p rawTableProps
	if err := json.Unmarshal(orEmpty(props), &p); err != nil {
		return err
	}
	if len(p.KeySchema) == 0 {
		return fmt.Errorf("KeySchema is required")
	}
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: attrDefs(p.AttributeDefinitions),
		KeySchema:            keySchema(p.KeySchema),
		BillingMode:          types.BillingModePayPerRequest,
	}
	provisioned := string(p.BillingMode) == string(types.BillingModeProvisioned) ||
		(p.BillingMode == "" && p.ProvisionedThroughput != nil)
	if provisioned {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = throughput(p.ProvisionedThroughput)
	}
	for _, gsi := range p.GlobalSecondaryIndexes {
		idx := types.GlobalSecondaryIndex{
			IndexName:  aws.String(string(gsi.IndexName)),
			KeySchema:  keySchema(gsi.KeySchema),
			Projection: projection(gsi.Projection),
		}
		if provisioned {
			idx.ProvisionedThroughput = throughput(gsi.ProvisionedThroughput)
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, idx)
	}
	for _, lsi := range p.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(string(lsi.IndexName)),
			KeySchema:  keySchema(lsi.KeySchema),
			Projection: projection(lsi.Projection),
		})
	}
	if p.StreamSpecification != nil && p.StreamSpecification.StreamViewType != "" {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(p.StreamSpecification.StreamViewType),
		}
	}
	tb := &Table{Name: name, Create: in}
	if ttl := p.TimeToLiveSpecification; ttl != nil && bool(ttl.Enabled) && ttl.AttributeName != "" {
		tb.TTLAttribute = string(ttl.AttributeName)
	}
	t.Tables[name] = tb
	return nil
}

func (t *Template) addSimpleTable(name string, props json.RawMessage) error {
	var p rawSimpleTableProps
	if err := json.Unmarshal(orEmpty(props), &p); err != nil {
		return err
	}
	// SAM's defaults: a string partition key called "id", on-demand billing.
	keyName, keyType := "id", types.ScalarAttributeTypeS
	if p.PrimaryKey != nil {
		if p.PrimaryKey.Name != "" {
			keyName = string(p.PrimaryKey.Name)
		}
		switch p.PrimaryKey.Type {
		case "", "String":
		case "Number":
			keyType = types.ScalarAttributeTypeN
		case "Binary":
			keyType = types.ScalarAttributeTypeB
		default:
			return fmt.Errorf("PrimaryKey.Type %q is not String, Number or Binary", p.PrimaryKey.Type)
		}
	}
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(keyName), AttributeType: keyType}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(keyName), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}
	if p.ProvisionedThroughput != nil {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = throughput(p.ProvisionedThroughput)
	}
	t.Tables[name] = &Table{Name: name, Create: in}
	return nil
}

func attrDefs(in []rawAttrDef) []types.AttributeDefinition {
	out := make([]types.AttributeDefinition, 0, len(in))
	for _, a := range in {
		out = append(out, types.AttributeDefinition{AttributeName: aws.String(string(a.AttributeName)), AttributeType: types.ScalarAttributeType(a.AttributeType)})
	}
	return out
}

func keySchema(in []rawKey) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(in))
	for _, k := range in {
		out = append(out, types.KeySchemaElement{AttributeName: aws.String(string(k.AttributeName)), KeyType: types.KeyType(k.KeyType)})
	}
	return out
}

func projection(p *rawProjection) *types.Projection {
	if p == nil {
		return &types.Projection{ProjectionType: types.ProjectionTypeAll}
	}
	out := &types.Projection{ProjectionType: types.ProjectionType(p.ProjectionType)}
	if out.ProjectionType == "" {
		out.ProjectionType = types.ProjectionTypeAll
	}
	for _, a := range p.NonKeyAttributes {
		out.NonKeyAttributes = append(out.NonKeyAttributes, string(a))
	}
	return out
}

func throughput(p *rawThroughput) *types.ProvisionedThroughput {
	r, w := int64(5), int64(5)
	if p != nil {
		if p.ReadCapacityUnits > 0 {
			r = int64(p.ReadCapacityUnits)
		}
		if p.WriteCapacityUnits > 0 {
			w = int64(p.WriteCapacityUnits)
		}
	}
	return &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(r), WriteCapacityUnits: aws.Int64(w)}
}

func mediaTypes(in []flexString) []string {
	out := make([]string, 0, len(in))
	for _, m := range in {
		// SAM escapes "/" as "~1" because the value becomes a JSON pointer path.
		out = append(out, strings.ReplaceAll(string(m), "~1", "/"))
	}
	return out
}

func orEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || string(b) == "null" {
		return json.RawMessage("{}")
	}
	return b
}

func first[T ~string](vals ...T) string {
	for _, v := range vals {
		if v != "" {
			return string(v)
		}
	}
	return ""
}

func firstInt(vals ...flexInt) int {
	for _, v := range vals {
		if v != 0 {
			return int(v)
		}
	}
	return 0
}

// ---- intrinsic function overrides ----

func resources(template interface{}) map[string]interface{} {
	if m, ok := template.(map[string]interface{}); ok {
		if r, ok := m["Resources"].(map[string]interface{}); ok {
			return r
		}
	}
	return nil
}

func resourceType(template interface{}, name string) (string, bool) {
	r, ok := resources(template)[name].(map[string]interface{})
	if !ok {
		return "", false
	}
	typ, _ := r["Type"].(string)
	return typ, true
}

// ref resolves pseudo parameters and parameter defaults like goformation does, and a
// resource to its logical ID (the local name of a table, a function, ...).
func ref(name string, input interface{}, template interface{}) interface{} {
	s, ok := input.(string)
	if !ok {
		return nil
	}
	switch s {
	case "AWS::Region":
		return Region
	case "AWS::AccountId":
		return AccountID
	case "AWS::StackName":
		return StackName
	case "AWS::Partition":
		return "aws"
	case "AWS::URLSuffix":
		return "amazonaws.com"
	}
	if _, ok := resourceType(template, s); ok {
		return s
	}
	return intrinsics.Ref(name, input, template)
}

// getAtt gives ARNs for tables and functions, enough for environment variables and
// policies to resolve; other attributes resolve to nothing, as in goformation.
func getAtt(_ string, input interface{}, template interface{}) interface{} {
	var res, attr string
	switch v := input.(type) {
	case string:
		res, attr, _ = strings.Cut(v, ".")
	case []interface{}:
		if len(v) == 2 {
			res, _ = v[0].(string)
			attr, _ = v[1].(string)
		}
	}
	typ, ok := resourceType(template, res)
	if !ok {
		return nil
	}
	switch {
	case (typ == "AWS::DynamoDB::Table" || typ == "AWS::Serverless::SimpleTable") && attr == "Arn":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", Region, AccountID, res)
	case typ == "AWS::DynamoDB::Table" && attr == "StreamArn":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/local", Region, AccountID, res)
	case typ == "AWS::Serverless::Function" && attr == "Arn":
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, AccountID, res)
	}
	return nil
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// sub is Fn::Sub with the local Ref and GetAtt above (goformation's own calls its
// built-in Ref, which would drop ${SomeTable}). "${!Literal}" stays "${Literal}".
func sub(_ string, input interface{}, template interface{}) interface{} {
	var (
		src  string
		vars map[string]interface{}
	)
	switch v := input.(type) {
	case string:
		src = v
	case []interface{}:
		if len(v) != 2 {
			return nil
		}
		src, _ = v[0].(string)
		vars, _ = v[1].(map[string]interface{})
	default:
		return nil
	}
	out := subVar.ReplaceAllStringFunc(src, func(m string) string {
		name := m[2 : len(m)-1]
		if val, ok := vars[name]; ok {
			return fmt.Sprint(val)
		}
		var resolved interface{}
		if strings.Contains(name, ".") {
			resolved = getAtt("Fn::GetAtt", name, template)
		} else {
			resolved = ref("Ref", name, template)
		}
		if resolved == nil {
			return ""
		}
		return fmt.Sprint(resolved)
	})
	return strings.ReplaceAll(out, "${!", "${")
}

// ---- tolerant raw shapes ----

type rawTemplate struct {
	Globals struct {
		Function *rawFunctionProps `json:"Function"`
		Api      *rawAPIProps      `json:"Api"`
	} `json:"Globals"`
	Resources map[string]struct {
		Type       string          `json:"Type"`
		Properties json.RawMessage `json:"Properties"`
	} `json:"Resources"`
}

type rawFunctionProps struct {
	CodeURI       flexString                `json:"CodeUri"`
	Handler       flexString                `json:"Handler"`
	Runtime       flexString                `json:"Runtime"`
	PackageType   flexString                `json:"PackageType"`
	ImageURI      flexString                `json:"ImageUri"`
	Timeout       flexInt                   `json:"Timeout"`
	MemorySize    flexInt                   `json:"MemorySize"`
	Environment   *rawEnvironment           `json:"Environment"`
	LoggingConfig *rawLoggingConfig         `json:"LoggingConfig"`
	Events        map[string]rawEventSource `json:"Events"`
}

type rawEnvironment struct {
	Variables map[string]*flexString `json:"Variables"`
}

type rawLoggingConfig struct {
	LogFormat           flexString `json:"LogFormat"`
	ApplicationLogLevel flexString `json:"ApplicationLogLevel"`
	SystemLogLevel      flexString `json:"SystemLogLevel"`
}

type rawEventSource struct {
	Type       string          `json:"Type"`
	Properties json.RawMessage `json:"Properties"`
}

type rawAPIEvent struct {
	Path   string     `json:"Path"`
	Method flexString `json:"Method"`
}

type rawHTTPAPIEvent struct {
	Path                 flexString `json:"Path"`
	Method               flexString `json:"Method"`
	PayloadFormatVersion flexString `json:"PayloadFormatVersion"`
}

type rawAPIProps struct {
	BinaryMediaTypes []flexString `json:"BinaryMediaTypes"`
}

type rawAttrDef struct {
	AttributeName flexString `json:"AttributeName"`
	AttributeType flexString `json:"AttributeType"`
}

type rawKey struct {
	AttributeName flexString `json:"AttributeName"`
	KeyType       flexString `json:"KeyType"`
}

type rawProjection struct {
	ProjectionType   flexString   `json:"ProjectionType"`
	NonKeyAttributes []flexString `json:"NonKeyAttributes"`
}

type rawThroughput struct {
	ReadCapacityUnits  flexInt `json:"ReadCapacityUnits"`
	WriteCapacityUnits flexInt `json:"WriteCapacityUnits"`
}

type rawIndex struct {
	IndexName             flexString     `json:"IndexName"`
	KeySchema             []rawKey       `json:"KeySchema"`
	Projection            *rawProjection `json:"Projection"`
	ProvisionedThroughput *rawThroughput `json:"ProvisionedThroughput"`
}

type rawTableProps struct {
	AttributeDefinitions    []rawAttrDef   `json:"AttributeDefinitions"`
	KeySchema               []rawKey       `json:"KeySchema"`
	BillingMode             flexString     `json:"BillingMode"`
	ProvisionedThroughput   *rawThroughput `json:"ProvisionedThroughput"`
	GlobalSecondaryIndexes  []rawIndex     `json:"GlobalSecondaryIndexes"`
	LocalSecondaryIndexes   []rawIndex     `json:"LocalSecondaryIndexes"`
	TimeToLiveSpecification *struct {
		AttributeName flexString `json:"AttributeName"`
		Enabled       flexBool   `json:"Enabled"`
	} `json:"TimeToLiveSpecification"`
	StreamSpecification *struct {
		StreamViewType flexString `json:"StreamViewType"`
	} `json:"StreamSpecification"`
}

type rawSimpleTableProps struct {
	PrimaryKey *struct {
		Name flexString `json:"Name"`
		Type flexString `json:"Type"`
	} `json:"PrimaryKey"`
	ProvisionedThroughput *rawThroughput `json:"ProvisionedThroughput"`
}

// flexString accepts a JSON string, number or boolean: YAML authors write
// `PORT: 8080` or `Enabled: true` without quotes and CloudFormation takes them as strings.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	var v interface{}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*s = ""
	case string:
		*s = flexString(x)
	case float64:
		*s = flexString(strconv.FormatFloat(x, 'f', -1, 64))
	case bool:
		*s = flexString(strconv.FormatBool(x))
	default:
		return fmt.Errorf("expected a string, got %s (an unresolved intrinsic function?)", b)
	}
	return nil
}

// flexInt accepts 30 or "30".
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*n = 0
		return nil
	}
	v, err := strconv.Atoi(string(s))
	if err != nil {
		return fmt.Errorf("expected an integer, got %s", b)
	}
	*n = flexInt(v)
	return nil
}

// flexBool accepts true or "true".
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*v = flexBool(strings.EqualFold(string(s), "true"))
	return nil
}
