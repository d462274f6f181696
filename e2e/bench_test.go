package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	benchInFlight = 48  // requests BenchmarkServiceLoad keeps in flight
	benchWarmup   = 300 // first requests sent before anything is measured
)

// BenchmarkServiceLoad drives POST /payments through the shared `lambdalocal serve` of TestMain (two PaymentFunction
// instances, DynamoDB Local) with benchInFlight requests in flight, b.N requests in all.
//
//   - FirstRequest: every request has a new key: claim, payment, completion in DynamoDB (201, not replayed).
//   - Duplicate: every request repeats one of 64 keys completed before the timer starts (201, replayed).
//
// Metrics: req/s (b.N over the wall time), p50-ms and p99-ms of the client-side latency (queueing for a free
// instance included), rss-MiB (the largest VmRSS of any PaymentFunction instance, sampled every 25 ms during the
// load: an upper bound of its steady state), hwm-MiB (VmHWM, the instance's peak since it started) and ready-ms
// (the longest start-to-first-/next of the live instances, from lambdalocal's "ready in" lines). Targets to
// compare with, not asserted: RSS <= 40 MB, start-to-ready <= 50 ms.
//
// Before the sub-benchmarks, benchWarmup first requests warm DynamoDB Local's JVM and the instances' connections:
// without it the first, smallest b.N runs measure the JIT, and the framework extrapolates from them. Use a fixed
// count for figures to compare, e.g. -benchtime=2000x.
func BenchmarkServiceLoad(b *testing.B) {
	client := loadHTTPClient(benchInFlight)
	warmup(b, client)
	b.Run("FirstRequest", func(b *testing.B) {
		headers := make([]http.Header, b.N)
		for i := range headers {
			headers[i] = withKey(newKey(b))
		}
		body := paymentBody(4200, cardVisa, "bench first")
		runServiceLoad(b, client, func(i int) (http.Header, string, string) { return headers[i], body, "false" })
	})
	b.Run("Duplicate", func(b *testing.B) {
		const distinct = 64
		headers := make([]http.Header, distinct)
		body := paymentBody(4300, cardVisa, "bench duplicate")
		for i := range headers {
			headers[i] = withKey(newKey(b))
			r, _, err := send(client, http.MethodPost, "/payments", headers[i], body)
			if err != nil || r.Status != http.StatusCreated {
				b.Fatalf("setup: POST /payments: %v %d %s", err, r.Status, r.Body)
			}
		}
		runServiceLoad(b, client, func(i int) (http.Header, string, string) { return headers[i%distinct], body, "true" })
	})
}

// runServiceLoad sends b.N POST /payments, request i made by req(i), which also gives the Idempotent-Replayed
// value every answer must have (with status 201).
func runServiceLoad(b *testing.B, client *http.Client, req func(i int) (header http.Header, body, replayed string)) {
	instances, err := liveInstances("PaymentFunction")
	if err != nil {
		b.Fatal(err)
	}
	pids := make([]int, len(instances))
	var ready time.Duration
	for i, in := range instances {
		pids[i] = in.PID
		ready = max(ready, in.ReadyIn)
	}
	workers := min(benchInFlight, b.N)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
	)
	sampler := startMemSampler(pids, 25*time.Millisecond)
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var bad error
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				h, body, replayed := req(i)
				r, took, err := send(client, http.MethodPost, "/payments", h, body)
				mine = append(mine, took)
				switch {
				case err != nil:
					bad = err
				case r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != replayed:
					bad = fmt.Errorf("request %d: status %d, Idempotent-Replayed %q (want 201, %q): %s",
						i, r.Status, r.Header.Get("Idempotent-Replayed"), replayed, r.Body)
				}
				if bad != nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, mine...)
			if firstErr == nil {
				firstErr = bad
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	rssKB, _, samples := sampler.Stop()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	hwmKB := 0
	for _, pid := range pids {
		if kb, err := procStatusKB(pid, "VmHWM"); err == nil {
			hwmKB = max(hwmKB, kb)
		}
	}
	sortDurations(all)
	rps := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(millis(percentile(all, 50)), "p50-ms")
	b.ReportMetric(millis(percentile(all, 99)), "p99-ms")
	b.ReportMetric(float64(rssKB)/1024, "rss-MiB")
	b.ReportMetric(float64(hwmKB)/1024, "hwm-MiB")
	b.ReportMetric(millis(ready), "ready-ms")
	b.Logf("%d requests, %d in flight, %d PaymentFunction instances (pids %v): %.0f req/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms; VmRSS max %d KiB over %d samples, VmHWM %d KiB; ready in max %s",
		b.N, workers, len(pids), pids, rps, millis(percentile(all, 50)), millis(percentile(all, 99)),
		millis(all[len(all)-1]), rssKB, samples, hwmKB, ready)
}

// warmup sends benchWarmup first requests, benchInFlight at a time, and fails on any answer but 201.
func warmup(b *testing.B, client *http.Client) {
	body := paymentBody(4100, cardVisa, "bench warm-up")
	headers := make([]http.Header, benchWarmup)
	for i := range headers {
		headers[i] = withKey(newKey(b))
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, benchInFlight)
	)
	start := time.Now()
	for range benchInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < benchWarmup; i = int(next.Add(1)) - 1 {
				r, _, err := send(client, http.MethodPost, "/payments", headers[i], body)
				if err == nil && r.Status != http.StatusCreated {
					err = fmt.Errorf("warm-up request %d: status %d: %s", i, r.Status, r.Body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("warm-up: %d first requests in %s", benchWarmup, time.Since(start).Round(time.Millisecond))
}
