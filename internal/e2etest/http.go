package e2etest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// GetJSON decodes a 200 answer of url into v.
func GetJSON(c *http.Client, url string, v any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Metrics is one scrape of /metrics: sample name plus its labels in
// sorted "k=v,k=v" form (values unquoted) → value.
type Metrics map[string]float64

// Scrape GETs url and parses a 200 answer as the Prometheus text format.
func Scrape(c *http.Client, url string) (Metrics, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the Prometheus text format; lines it cannot parse
// are skipped.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[sampleKey(line[:i])] = v
	}
	return m, sc.Err()
}

// sampleKey normalises `name{b="2",a="1"}` to `name{a=1,b=2}`. Label
// values here never hold commas or escaped quotes.
func sampleKey(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok {
		return s
	}
	parts := strings.Split(strings.TrimSuffix(labels, "}"), ",")
	kv := parts[:0]
	for _, p := range parts {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		kv = append(kv, k+"="+strings.Trim(v, `"`))
	}
	slices.Sort(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// Get returns a sample; labels are "k=v" pairs. ok is false if absent.
func (m Metrics) Get(name string, labels ...string) (float64, bool) {
	labels = slices.Clone(labels)
	slices.Sort(labels)
	key := name
	if len(labels) > 0 {
		key += "{" + strings.Join(labels, ",") + "}"
	}
	v, ok := m[key]
	return v, ok
}
