// Package idempotenttest helps test code built on package idempotent: a conformance suite that holds any
// idempotent.Store to the semantics the engine relies on, and a manual Clock so tests move time instead of
// sleeping.
//
// Run the suite against your store in one line:
//
//	func TestMyStore(t *testing.T) {
//		idempotenttest.RunStoreTests(t, func(t *testing.T) idempotent.Store { return mystore.New(...) })
//	}
//
// The engine-level cases (RunRoundTrips, RunLocalCacheMakesNoCalls, RunExpiredRecordIsReclaimed, RunEndedLease,
// RunConcurrentDuplicates, RunTooLargeNeverRunsTwice) send requests through idempotent.Run on a real store and
// take what only the store knows as arguments: the names and counts of its calls, how to read its raw record,
// the finest instant it keeps. RunEngineBench is the benchmark the stores share, with each store's own baselines.
package idempotenttest
