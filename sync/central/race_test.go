//go:build race

package central

const raceEnabled = true
