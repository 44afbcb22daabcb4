//go:build race

package l7

// The race detector allocates on its own: allocation budgets are skipped.
const raceEnabled = true
