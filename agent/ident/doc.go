// Package ident turns what a scanner or a cashier gives into a customer
// identifier the agent can look up: it normalises and validates loyalty
// numbers, QR payloads, app tokens, e-mail addresses and phone numbers, and
// computes their keyed hashes, the only form in which an identifier is ever
// stored or compared (shared/PROTOCOL.md, "Identifiers").
//
// # Basics
//
// [Rules] is the loyalty program's configuration: length and check digit of
// loyalty numbers, the QR and app forms a scan may take, the default country
// code for phone numbers, and the values that never identify a customer.
// Start from [DefaultRules], change what the program needs, and call
// [Rules.Validate] once, when the config is loaded.
//
// [Rules.Normalize] takes an identifier of a known [Kind], typed by a cashier
// or sent by the POS; [Rules.ParseScan] takes a scanner payload and works out
// its kind. Both return an [ID] holding the normalised value (digits only for
// a loyalty number, lower case for an e-mail address, E.164 for a phone
// number, the token as given for an app), or an [*InvalidError] whose
// [Reason] says why the input is not usable. [ErrBlocked] marks an input that
// is well formed but never names a customer (a blocked value, an all-zero
// loyalty number, a device id), so the caller can answer "not usable" rather
// than "unknown customer".
//
// A [Hasher] holds the tenant key and computes HMAC-SHA256(tenant key,
// kind ":" value) for an ID, the bytes the central CDP sends in a profile's
// idents. It is safe for concurrent use and does not allocate.
//
// The package is pure: no I/O, no store, no network, no clock, no logging.
//
// # What it must never do
//
//   - Put a clear identifier in an error, a log value or a printed value.
//     Errors carry a kind and a reason only; [ID] redacts itself in String,
//     Format, LogValue and MarshalText, and [ID.Mask] is the only form meant
//     for a technician's eyes. The agent keeps an ID in memory just long
//     enough to hash it.
//   - Treat a device id (POS, kiosk, speaker) or a blocked value as a
//     customer identifier: a shared device must never merge the customers
//     who use it.
//   - Accept a loyalty number whose check digit, length or prefix is wrong:
//     a mistyped number is rejected, never looked up.
//
// # Invariants the tests protect
//
// Invariant 6 of shared/DESIGN.md (no clear identifiers at rest): the hash of
// an ID is exactly the HMAC-SHA256 of PROTOCOL.md (checked against
// crypto/hmac), normalisation is idempotent (an accepted ID normalises to
// itself, so the agent and the central hash the same bytes), and no error
// text ever holds the input (FuzzParseScan, FuzzNormalize, FuzzQRForm).
//
// The shared-devices rule of PROTOCOL.md: blocked values, all-zero loyalty
// numbers and device ids are refused with [ReasonBlocked], whatever form the
// input takes.
//
// # Caveats
//
//  1. The exported fields of [ID] are readable by design, so that the agent
//     can hash them. fmt cannot call methods on a value stored in an
//     unexported field of another struct: never embed an ID in an unexported
//     field of something that may be printed; hold its hash instead.
//  2. Normalize and ParseScan assume [Rules.Validate] passed. A form that
//     does not parse never matches, and zero limits take their defaults, but
//     nothing else is checked on the hot path.
package ident
