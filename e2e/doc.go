// Package e2e holds the black-box end-to-end tests of the example service: they build cmd/lambdalocal, serve
// template.yaml's routes on DynamoDB Local and check over real HTTP the README's tables (HTTP semantics of a
// wrapped route, the example service's API, configuration), the sample events
// in events/ through `lambdalocal invoke`, and that template.yaml agrees with the code. Run with
// `go test -race ./e2e/` (Java 17+ and tools/dynamodb-local are required; nothing is skipped).
package e2e
