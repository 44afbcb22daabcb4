package config

// Aggregate makes a route answer from several upstream calls made in
// parallel, whose JSON responses are merged into one JSON document (issue
// #8, docs/transform.md "Response aggregation"). Such a route has no pool
// of its own (each call names one) and no versioning, rewrite,
// request_headers or cache; the client's request body is not sent. A call
// fails when no endpoint takes it, when it times out, when its status is
// not 2xx, or when its body is not JSON or is larger than 1 MiB.
type Aggregate struct {
	// Calls are the upstream requests, made in parallel; at least one.
	Calls []AggregateCall `yaml:"calls"`
	// Merge is how the responses are combined: named (an object with one
	// key per call, its name, holding the call's JSON) or object (the
	// calls' top-level objects merged in the order of calls, a later
	// call's key replacing an earlier one's). Default: named.
	Merge string `yaml:"merge"`
	// OnPartialFailure is the answer when some calls fail: fail (502 with
	// a JSON error naming the failed calls) or partial (200 with what
	// arrived, and the headers X-Portcullis-Completed: false and
	// X-Portcullis-Failed: the failed calls' names). When every call
	// fails the answer is 502 either way. Default: fail.
	OnPartialFailure string `yaml:"on_partial_failure"`
}

// AggregateCall is one upstream request of an aggregate route.
type AggregateCall struct {
	// Name is unique among the route's calls; it is the call's key in
	// merge: named and in error messages.
	Name string `yaml:"name"`
	// Pool receives the call, through the pool's balancing (the pool's
	// retries do not apply).
	Pool string `yaml:"pool"`
	// Method is the HTTP method. Default: GET.
	Method string `yaml:"method"`
	// Path is the path and query sent, a template filled from the client's
	// request (see HeaderOps): "/users/{path.id}?fields={query.fields}".
	// A result with a . or .. segment fails the call.
	Path string `yaml:"path"`
	// Timeout is the call's time limit, from the start of the call to the
	// end of its body. Default: 5s.
	Timeout Duration `yaml:"timeout"`
	// Select keeps only these top-level fields of the call's JSON object
	// (of each object of a JSON array). Default: all.
	Select []string `yaml:"select"`
	// Rename renames top-level fields, after select.
	Rename []AggregateRename `yaml:"rename"`
}

// AggregateRename renames a top-level field of a call's response.
type AggregateRename struct {
	// From is the field's name in the upstream's answer.
	From string `yaml:"from"`
	// To is its name in the merged answer.
	To string `yaml:"to"`
}
