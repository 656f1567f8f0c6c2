// httpload measures the latency of one HTTP GET endpoint under N concurrent keep-alive clients and
// prints one JSON document. Written in Go so that the load generator costs the server little CPU.
//
// Closed loop (-rate 0): each client sends its next request as soon as it has the answer, so the
// latency includes queueing behind the other clients (Little's law: p50 ~ clients / throughput).
// Open loop (-rate R): R requests/s in all, spread evenly over the clients. Each request is timed
// from when it was written; how late it was written against its schedule (timer overshoot, or a
// previous answer on the same connection still outstanding) is reported as send_lag, so a stalled
// server cannot hide behind delayed sends.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type result struct {
	Mode           string         `json:"mode"`
	Clients        int            `json:"clients"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	RequestsPerSec float64        `json:"requests_per_second"`
	P50Ms          float64        `json:"p50_ms"`
	P90Ms          float64        `json:"p90_ms"`
	P99Ms          float64        `json:"p99_ms"`
	MaxMs          float64        `json:"max_ms"`
	SendLagP50Ms   float64        `json:"send_lag_p50_ms"`
	SendLagP99Ms   float64        `json:"send_lag_p99_ms"`
	ServerP50Ms    float64        `json:"server_p50_ms,omitempty"`
	ServerP99Ms    float64        `json:"server_p99_ms,omitempty"`
	StatusCounts   map[string]int `json:"status_counts"`
}

type sample struct {
	latency time.Duration
	lag     time.Duration
	server  float64 // ms from the Server-Timing header, -1 when absent
	status  int
}

func main() {
	url := flag.String("url", "", "http://host:port/path to GET")
	clients := flag.Int("clients", 50, "concurrent keep-alive connections")
	duration := flag.Duration("duration", 5*time.Second, "how long to send")
	warmup := flag.Duration("warmup", time.Second, "load before measuring, not counted")
	rate := flag.Float64("rate", 0, "open loop: requests per second over all clients; 0 = closed loop")
	flag.Parse()
	if !strings.HasPrefix(*url, "http://") || *clients < 1 || *duration <= 0 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "httpload: -url http://host:port/path is required; -clients >= 1, -duration > 0, -rate >= 0")
		os.Exit(2)
	}
	hostPath := strings.TrimPrefix(*url, "http://")
	host, path := hostPath, "/"
	if i := strings.IndexByte(hostPath, '/'); i >= 0 {
		host, path = hostPath[:i], hostPath[i:]
	}
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")

	var mu sync.Mutex
	var samples []sample
	errors := 0
	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var local []sample
			localErrors := 0
			defer func() {
				mu.Lock()
				samples = append(samples, local...)
				errors += localErrors
				mu.Unlock()
			}()
			conn, err := net.Dial("tcp", host)
			if err != nil {
				localErrors++
				return
			}
			defer conn.Close()
			reader := bufio.NewReader(conn)
			var interval time.Duration
			due := start
			if *rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(*clients) / *rate)
				due = start.Add(interval * time.Duration(c) / time.Duration(*clients))
			}
			for {
				if interval > 0 {
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				} else {
					due = time.Now()
				}
				if due.After(end) {
					return
				}
				sent := time.Now()
				if _, err := conn.Write(request); err != nil {
					localErrors++
					return
				}
				response, err := http.ReadResponse(reader, nil)
				if err != nil {
					localErrors++
					return
				}
				_, err = io.Copy(io.Discard, response.Body)
				response.Body.Close()
				done := time.Now()
				if err != nil {
					localErrors++
					return
				}
				if !due.Before(measureFrom) {
					local = append(local, sample{done.Sub(sent), sent.Sub(due), serverTiming(response.Header.Get("Server-Timing")), response.StatusCode})
				}
				if interval > 0 {
					due = due.Add(interval)
				}
			}
		}(c)
	}
	wg.Wait()
	if len(samples) == 0 {
		fmt.Fprintf(os.Stderr, "httpload: no answer from %s (%d errors)\n", *url, errors)
		os.Exit(1)
	}
	out := result{Mode: "closed loop", Clients: *clients, Requests: len(samples), Errors: errors,
		RequestsPerSec: float64(len(samples)) / duration.Seconds(), StatusCounts: map[string]int{}}
	if *rate > 0 {
		out.Mode = fmt.Sprintf("open loop at %.0f req/s", *rate)
	}
	latencies := make([]float64, len(samples))
	lags := make([]float64, len(samples))
	var server []float64
	for i, s := range samples {
		latencies[i] = float64(s.latency) / float64(time.Millisecond)
		lags[i] = float64(s.lag) / float64(time.Millisecond)
		if s.server >= 0 {
			server = append(server, s.server)
		}
		out.StatusCounts[strconv.Itoa(s.status)]++
	}
	sort.Float64s(latencies)
	out.P50Ms, out.P90Ms, out.P99Ms = percentile(latencies, .5), percentile(latencies, .9), percentile(latencies, .99)
	out.MaxMs = latencies[len(latencies)-1]
	sort.Float64s(lags)
	out.SendLagP50Ms, out.SendLagP99Ms = percentile(lags, .5), percentile(lags, .99)
	if len(server) > 0 {
		sort.Float64s(server)
		out.ServerP50Ms, out.ServerP99Ms = percentile(server, .5), percentile(server, .99)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func percentile(sorted []float64, fraction float64) float64 {
	return sorted[int(fraction*float64(len(sorted)-1)+0.5)]
}

// serverTiming reads "app;dur=0.071" (milliseconds) as written by the services' metrics middleware.
func serverTiming(header string) float64 {
	i := strings.Index(header, "dur=")
	if i < 0 {
		return -1
	}
	value, err := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(header[i+4:], ",", 2)[0]), 64)
	if err != nil {
		return -1
	}
	return value
}
