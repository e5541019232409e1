package central

import (
	"errors"
	"fmt"
)

// Errors callers branch on with errors.Is. Messages never hold identifiers
// or event contents.
var (
	// ErrInvalidConfig is returned by Config.Validate and New when a setting
	// is missing or wrong. The error names the setting.
	ErrInvalidConfig = errors.New("invalid central config")

	// ErrNotPublished is returned by Publish when the change was logged
	// durably and has its seq, but could not be handed to the broker (not
	// connected, or the broker did not confirm it in time). Agents still
	// get it: the next change or a SyncRequest reveals the gap and the run
	// carries it. Callers that only need the change logged may ignore it.
	ErrNotPublished = errors.New("change logged but not published")

	// ErrCorrupt is returned when a data file is damaged anywhere but at its
	// tail (a torn tail, left by a crash, is dropped at open and tolerated
	// by readers), or holds a record that does not decode.
	ErrCorrupt = errors.New("corrupt data file")

	// ErrDataMismatch is returned by New when the data directory was made
	// for another tenant, baseline (customers, seed) or central key: the
	// change logs and the agents' caches would no longer agree.
	ErrDataMismatch = errors.New("data directory made with other settings")

	// ErrDataDirInUse is returned by New when another process holds the
	// data directory's lock.
	ErrDataDirInUse = errors.New("data directory in use by another cdpsim")

	// ErrNotLoopback is returned by ListenControl for an address that is
	// not on the loopback interface: the control API has no
	// authentication.
	ErrNotLoopback = errors.New("control address is not a loopback address")

	// ErrNotRunning is returned by calls that need the broker (PublishRaw,
	// PushSnapshot) when the central's Run is not active.
	ErrNotRunning = errors.New("central is not running")

	// ErrBadRequest is returned when a control request cannot become a
	// change: an unknown kind, a missing field, a value the protocol
	// refuses. The control API answers it with 400.
	ErrBadRequest = errors.New("bad request")
)

// configError names the setting that is wrong.
func configError(key, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, reason)
}

// badRequest wraps reason into ErrBadRequest.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}
