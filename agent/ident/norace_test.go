//go:build !race

package ident_test

const raceEnabled = false
