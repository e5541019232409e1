// Package agent is the domain core of the in-store agent: it knows
// customers, purposes and rights, and nothing of MQTT, serial ports or HTTP.
//
// It identifies a customer from a scan or a typed identifier (Identify),
// records what happens in the store as Segment-compatible events
// (Capture), runs the preference centre (SetConsent, Restrict, Erase,
// RequestAccess, Held), and applies the central CDP's changes (Apply) in
// the same transaction that moves the change cursor.
//
// What it holds, in the store:
//   - a profile cache in two generations (store.CacheBucket): per profile a
//     sealed record with the consent-scoped attributes, the consent
//     decisions, the restriction flag, and the keyed hashes of its
//     identifiers; an index from each identifier hash to the profile; an
//     expiry index;
//   - events held while a new customer's consent is undecided;
//   - rights records and audit lines, without personal data.
//
// Profiles are keyed by a keyed hash of their central id, never the id;
// identifiers only by their keyed hash (HMAC-SHA256 under the tenant key,
// as the central computes them).
//
// What it must never do: hold an attribute whose purpose is not permitted
// (the cache is filtered on every write, and purged in the same transaction
// as a withdrawal or objection); let an event of a purpose that is not
// permitted leave with identity; treat a device id or a blocked value as a
// customer; write personal data in logs, errors or audit lines.
//
// The invariants its tests protect: 4 (consent-scoped, withdrawal applied
// at once with queued events stripped), 5 (an erasure leaves nothing
// identifiable, in any bucket or in the file after compaction), 6 (no clear
// identifiers at rest) and 9 (everything here works with no network).
package agent
