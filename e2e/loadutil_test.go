package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Shared by TestLoad and BenchmarkServiceLoad.

// loadHTTPClient keeps one connection per request in flight: the default transport keeps only 2 idle
// connections per host, so under load every other request would pay a new TCP connection.
func loadHTTPClient(inFlight int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2 * inFlight
	tr.MaxIdleConnsPerHost = 2 * inFlight
	return &http.Client{Timeout: 40 * time.Second, Transport: tr}
}

// send is doRequest on a given client, timed from before the request is written to the end of the body.
func send(c *http.Client, method, path string, header http.Header, body string) (response, time.Duration, error) {
	req, err := http.NewRequest(method, baseURL+path, strings.NewReader(body))
	if err != nil {
		return response{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return response{}, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return response{}, took, err
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, took, nil
}

// percentile is the nearest-rank percentile (0 < p <= 100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// ---- the runner's instances, from its log ----

// instanceLine is what runtimeapi logs when an instance reaches its first /next.
var instanceLine = regexp.MustCompile(`(?m)^\[([A-Za-z0-9]+)#(\d+)\] ready in (\S+) \(pid (\d+)\)$`)

type fnInstance struct {
	N       int
	PID     int
	ReadyIn time.Duration
}

// liveInstances lists the instances of fn that lambdalocal logged as ready and whose process still runs that
// function's bootstrap (a replaced instance's PID is gone, or reused by something else).
func liveInstances(fn string) ([]fnInstance, error) {
	var out []fnInstance
	for _, m := range instanceLine.FindAllStringSubmatch(runnerOutput.String(), -1) {
		if m[1] != fn {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		pid, _ := strconv.Atoi(m[4])
		in, err := time.ParseDuration(m[3])
		if err != nil {
			return nil, fmt.Errorf("ready line %q: %w", m[0], err)
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.Contains(exe, "/"+fn+"/bootstrap") {
			continue
		}
		out = append(out, fnInstance{N: n, PID: pid, ReadyIn: in})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no live %s instance in lambdalocal's ready lines", fn)
	}
	return out, nil
}

// procStatusKB reads one "Name: <n> kB" field of /proc/<pid>/status.
func procStatusKB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// memSampler samples VmRSS of some processes at a fixed period while a load runs.
type memSampler struct {
	pids []int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples int
	maxKB   map[int]int // per pid, the largest VmRSS seen
	lastKB  map[int]int // per pid, the last VmRSS seen
}

func startMemSampler(pids []int, every time.Duration) *memSampler {
	s := &memSampler{pids: pids, stop: make(chan struct{}), done: make(chan struct{}), maxKB: map[int]int{}, lastKB: map[int]int{}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				s.sample()
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	for _, pid := range s.pids {
		if kb, err := procStatusKB(pid, "VmRSS"); err == nil {
			s.maxKB[pid] = max(s.maxKB[pid], kb)
			s.lastKB[pid] = kb
		}
	}
}

// Stop ends the sampling and returns the largest and the last VmRSS of any sampled process, in KiB.
func (s *memSampler) Stop() (maxKB, lastKB, samples int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid := range s.maxKB {
		maxKB = max(maxKB, s.maxKB[pid])
		lastKB = max(lastKB, s.lastKB[pid])
	}
	return maxKB, lastKB, s.samples
}
