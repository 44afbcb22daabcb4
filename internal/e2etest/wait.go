package e2etest

import (
	"testing"
	"time"
)

// Eventually polls cond every poll until it holds or timeout passes, and
// returns how long it took. On timeout it fails the test with what cond
// last said.
func Eventually(t testing.TB, what string, timeout, poll time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v; last: %s", what, timeout, last)
		}
		time.Sleep(poll)
	}
}

// WaitFor polls cond every 20 ms until it is true or within passes.
func WaitFor(within time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > within {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tail returns the last n bytes of s, marked with "..." if cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Until polls cond every 5 ms until it holds, and fails the test with
// "timed out waiting for what" when timeout passes first. It returns how
// long it took.
func Until(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}
