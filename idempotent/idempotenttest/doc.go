// Package idempotenttest helps test code built on package idempotent: a conformance suite that holds any
// idempotent.Store to the semantics the engine relies on, and a manual Clock so tests move time instead of
// sleeping.
//
// Run the suite against your store in one line:
//
//	func TestMyStore(t *testing.T) {
//		idempotenttest.RunStoreTests(t, func(t *testing.T) idempotent.Store { return mystore.New(...) })
//	}
package idempotenttest
