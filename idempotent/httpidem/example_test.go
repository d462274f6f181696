package httpidem_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/httpidem"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// A payments API on the standard ServeMux. Each route that creates something is wrapped, so its scope is the
// pattern the mux matched ("/payments"); GET routes need no wrapping (safe methods run straight through anyway).
func ExampleMiddleware() {
	engine := idempotent.New(memstore.New(), idempotent.WithDisabled(false))
	idem := httpidem.Middleware(engine, httpidem.WithFunctionName("payments-api"))

	charges := 0
	mux := http.NewServeMux()
	mux.Handle("POST /payments", idem(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		charges++
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/payments/pay_1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"pay_1","amount":2000}`)
	})))

	send := func(key, body string) {
		req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Idempotent-Replayed"), rec.Body.String())
	}
	send("order-42", `{"amount": 2000}`)
	send("order-42", `{"amount":2000}`) // a retry: the recorded response, byte for byte
	send("order-42", `{"amount": 9999}`)
	send("", `{"amount": 2000}`)
	fmt.Println("charges:", charges)
	// Output:
	// 201 false {"id":"pay_1","amount":2000}
	// 201 true {"id":"pay_1","amount":2000}
	// 422 false {"type":"https://github.com/idemkit/idemkit/blob/main/idempotent/apigw/problems.md#payload-mismatch","title":"Idempotency key reused","status":422,"detail":"This idempotency key was already used with a different request. Use a new key for a new request."}
	// 400 false {"type":"https://github.com/idemkit/idemkit/blob/main/idempotent/apigw/problems.md#missing-key","title":"Idempotency key required","status":400,"detail":"This operation requires an Idempotency-Key header."}
	// charges: 1
}

// The same mux as a Lambda function behind a Function URL, through aws-lambda-go's own net/http adapter
// (lambdaurl, response streaming). The middleware buffers each response (see Middleware), so clients get whole
// responses; the function name in the scope comes from AWS_LAMBDA_FUNCTION_NAME. Behind API Gateway, or in a
// container, the same handler serves unchanged (the Lambda Web Adapter sets AWS_LAMBDA_FUNCTION_NAME too).
func ExampleMiddleware_functionURL() {
	engine := idempotent.New(memstore.New()) // dynamostore in production: see the idempotent package
	mux := http.NewServeMux()
	mux.Handle("POST /payments", httpidem.Middleware(engine)(http.HandlerFunc(createPayment)))
	lambdaurl.Start(mux)
}

func createPayment(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }
