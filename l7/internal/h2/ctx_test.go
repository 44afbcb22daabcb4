package h2

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestStreamContextBehavesLikeACancelContext(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "listener")
	c := newStreamCtx(parent)
	if c.Value(ctxKey{}) != "listener" || c.Err() != nil {
		t.Fatal("value or early error")
	}
	ran := make(chan string, 3)
	stopped := context.AfterFunc(c, func() { ran <- "stopped" })
	kept := context.AfterFunc(c, func() { ran <- "kept" })
	child, cancel := context.WithTimeout(c, time.Hour)
	defer cancel()
	if !stopped() {
		t.Fatal("stop before cancel must report true")
	}
	c.cancel()
	c.cancel() // idempotent
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatal(c.Err())
	}
	if got := <-ran; got != "kept" {
		t.Fatalf("ran %q", got)
	}
	if kept() {
		t.Fatal("stop after the function ran must report false")
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context was not cancelled")
	}
	select {
	case f := <-ran:
		t.Fatalf("%q ran after it was stopped", f)
	case <-time.After(20 * time.Millisecond):
	}
	late := make(chan struct{})
	context.AfterFunc(c, func() { close(late) })
	<-late // registered after the cancel: runs at once
}

// The first registration, kept inline in the context, runs on the cancel
// like the others, and its stop reports that it ran.
func TestStreamContextRunsItsFirstAfterFunc(t *testing.T) {
	c := newStreamCtx(context.Background())
	ran := make(chan struct{})
	stop := c.AfterFunc(func() { close(ran) })
	c.cancel()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the first AfterFunc did not run")
	}
	if stop() {
		t.Fatal("stop after the function ran must report false")
	}
}
