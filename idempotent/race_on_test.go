//go:build race

package idempotent_test

// raceEnabled reports a build with the race detector, under which allocation counts are not meaningful.
const raceEnabled = true
