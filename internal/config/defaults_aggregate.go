package config

import "time"

// Response aggregation defaults (issue #8).
const (
	// DefaultAggregateMerge is how the calls' responses are combined.
	DefaultAggregateMerge = AggregateMergeNamed
	// DefaultAggregateOnPartialFailure is the answer when some calls fail.
	DefaultAggregateOnPartialFailure = AggregatePartialFail
	// DefaultAggregateMethod is a call's method.
	DefaultAggregateMethod = "GET"
	// DefaultAggregateTimeout is a call's time limit.
	DefaultAggregateTimeout = 5 * time.Second
)

// Aggregate merge modes and partial failure answers.
const (
	AggregateMergeNamed    = "named"
	AggregateMergeObject   = "object"
	AggregatePartialFail   = "fail"
	AggregatePartialAnswer = "partial"
)

func (r *Route) setAggregateDefaults() {
	a := r.Aggregate
	if a == nil {
		return
	}
	def(&a.Merge, DefaultAggregateMerge)
	def(&a.OnPartialFailure, DefaultAggregateOnPartialFailure)
	for i := range a.Calls {
		c := &a.Calls[i]
		def(&c.Method, DefaultAggregateMethod)
		def(&c.Timeout, Duration(DefaultAggregateTimeout))
	}
}
