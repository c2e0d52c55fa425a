//go:build race

package host

// raceEnabled shrinks the randomized e2e test under the race detector.
const raceEnabled = true
