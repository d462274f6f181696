package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkBursts measures what a waiting duplicate has to cover and what clients see, through the shared
// `lambdalocal serve` of TestMain (two instances per function, DynamoDB Local):
//
//   - FirstAlone/{Payments,Users}: b.N first requests one after the other (a new key each): p50-ms, p99-ms and
//     max-ms of their latency, which is what a duplicate arriving with them waits for at most.
//   - DuplicateBurst/{Payments,Users}: b.N bursts of 20 requests sent at once with one key: the share of 201
//     answers (ok-share; the rest are 409 in-progress), conflicts/op (409s per burst) and the latency of every
//     answer (p50-ms, p99-ms, max-ms).
//
// Use a fixed count, e.g. -benchtime=50x.
func BenchmarkBursts(b *testing.B) {
	client := loadHTTPClient(32)
	warmup(b, client)
	routes := []struct {
		name, path string
		body       func(b *testing.B) string
	}{
		{"Payments", "/payments", func(*testing.B) string { return paymentBody(3100, cardVisa, "burst") }},
		{"Users", "/users", func(b *testing.B) string {
			return userBody("Burst", "burst."+strings.TrimPrefix(newKey(b), "e2e-")[:12]+"@example.com")
		}},
	}
	for _, rt := range routes {
		b.Run("FirstAlone/"+rt.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				b.StopTimer()
				h, body := withKey(newKey(b)), rt.body(b)
				b.StartTimer()
				r, d, err := send(client, http.MethodPost, rt.path, h, body)
				if err != nil || r.Status != http.StatusCreated {
					b.Fatalf("POST %s: %v %d %s", rt.path, err, r.Status, r.Body)
				}
				took = append(took, d)
			}
			reportLatencies(b, took)
		})
		b.Run("DuplicateBurst/"+rt.name, func(b *testing.B) {
			const n = 20
			var took []time.Duration
			ok, conflicts := 0, 0
			for b.Loop() {
				b.StopTimer()
				h, body := withKey(newKey(b)), rt.body(b)
				b.StartTimer()
				var wg sync.WaitGroup
				var mu sync.Mutex
				start := make(chan struct{})
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						r, d, err := send(client, http.MethodPost, rt.path, h, body)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err != nil:
							b.Errorf("POST %s: %v", rt.path, err)
						case r.Status == http.StatusCreated:
							ok++
						case r.Status == http.StatusConflict:
							conflicts++
						default:
							b.Errorf("POST %s: %d %s", rt.path, r.Status, r.Body)
						}
						took = append(took, d)
					}()
				}
				close(start)
				wg.Wait()
			}
			b.ReportMetric(float64(ok)/float64(b.N*n), "ok-share")
			b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
			reportLatencies(b, took)
		})
	}
}

func reportLatencies(b *testing.B, took []time.Duration) {
	sortDurations(took)
	b.ReportMetric(millis(percentile(took, 50)), "p50-ms")
	b.ReportMetric(millis(percentile(took, 99)), "p99-ms")
	b.ReportMetric(millis(took[len(took)-1]), "max-ms")
}
