// Package runtimeapi runs a function's bootstrap the way Lambda does: each instance
// is a separate process that pulls its invocations from its own Lambda Runtime API
// endpoint (version 2018-06-01), given to it in AWS_LAMBDA_RUNTIME_API.
//
// Endpoints served to the runtime, as the Runtime API's OpenAPI document defines them:
//
//	GET  /2018-06-01/runtime/invocation/next             blocks until an invocation; event in the body,
//	                                                      Lambda-Runtime-Aws-Request-Id, -Deadline-Ms,
//	                                                      -Invoked-Function-Arn, -Trace-Id headers
//	POST /2018-06-01/runtime/invocation/{id}/response    202; 400 unknown id; 413 over 6 MiB
//	POST /2018-06-01/runtime/invocation/{id}/error       202; 400 unknown id
//	POST /2018-06-01/runtime/init/error                  202; the instance is then replaced
//
// A Pool keeps N instances of one function. Invoke hands an event to the first free
// instance (callers queue while all are busy) and enforces the function's timeout:
// an instance that exceeds it is killed by PID and a fresh one started, as is one
// that crashes. The caller gets what Lambda's Invoke API would give: the response
// payload, or an error payload with the function error flagged.
//
// Cold starts are measured from just before each process is started to its first
// GET /runtime/invocation/next (the end of Lambda's init phase): Instances reports
// them with the PIDs, and the pool writes "[Function#n] ready in 7.3ms (pid 1234)"
// to its Output once per process.
package runtimeapi
