// Package support builds what a field technician sees of an agent through
// storectl, for the daemon (its technician routes) and for storectl itself
// (reading a stopped agent's store): masked views of queued events, of one
// customer (lookup) and of scans; the status of a stopped agent; the
// configuration with secrets removed; and the support bundle. It also
// runs a daemon's parts (Parts), for the daemon and the in-process demo.
//
// # Masking
//
// Every view here is built so that no personal data can reach a
// technician's screen, a script or a bundle:
//
//   - identifiers are shown only as ident.ID.Mask() shows them (the kind
//     and a few characters: "loyalty:•••••••••13");
//   - user ids and anonymous ids are never shown: a [Masker] turns them
//     into a Ref, the first 4 bytes of HMAC-SHA256(tenant key,
//     "storectl-ref:" id) in hex, so the same customer has the same Ref in
//     every output (and the central, holding the tenant key, can match a
//     Ref to its id), while nobody without the key can;
//   - attribute values, event properties and traits are never read into a
//     view: a view says how many there are, their names for attributes,
//     and their JSON type;
//   - a scanned code that is not a valid identifier shows only its kind
//     and length.
//
// It must never return or log a clear identifier, an id or a value, and
// never write to a store except the one audit entry of a lookup. Its
// tests seed e-mail addresses, names, card and phone numbers and check
// that no view holds them.
package support
