package apigw

import "github.com/idemkit/idemkit/idempotent/httpidem"

// response is the recorded form the tests compare, whichever front end answered.
type response = httpidem.Response
