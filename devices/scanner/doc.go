// Package scanner drives barcode, QR and NFC scanners on serial ports
// (USB-serial, USB CDC-ACM, RS-232) through github.com/tarm/serial, and hands
// each good scan to a Handler that the daemon wires to the agent.
//
// # Basics
//
// A [Scanner] owns one port: it opens it, reads it, cuts the bytes into
// frames, counts what it rejects, and reopens the port when it goes away.
// Run it with [Scanner.Run]; stop it by cancelling the context. [Scanner.Stats]
// tells a technician whether the port is up and why frames were rejected.
//
// Framing lives apart from the port, in [FrameReader], which takes bytes as
// they arrived plus the time they arrived. Every frame ends at the configured
// terminator (CR, LF or CRLF); a prefix and suffix are stripped when present;
// an AIM symbology identifier ("]E0") is decoded and stripped when the port is
// configured to send one. A frame is rejected, with a [Reason], when it is
// noise (control bytes, invalid UTF-8), too long, a half frame (the line
// stalled before the terminator), empty, missing its AIM identifier, or the
// same code again within the debounce window.
//
// # What it owns, and what it must never do
//
// The package owns the port's lifecycle, framing and decoding, and the
// counters. It must never:
//   - log, count or return in Stats or errors the scanned code: codes can be
//     loyalty numbers, which are personal data (log their length and
//     symbology only; [Scan] and [Frame] redact themselves in logs);
//   - know what a scan means: it imports nothing of the agent or the store,
//     and declares the [Handler] interface it calls;
//   - block its read loop on the handler: scans go through a small bounded
//     queue, and are dropped and counted when it is full;
//   - give up on a device: a missing or vanished port is retried with
//     backoff until the context ends.
//
// # Invariants the tests protect
//
// Noise, over-long frames and half frames never corrupt the next good frame:
// the reader resynchronises at the next terminator or stall. A good frame is
// never empty, never longer than MaxFrame and never holds a control byte or
// invalid UTF-8, however its bytes were split across reads (FuzzFrameReader).
// A port that vanishes and comes back is reopened and read again without
// restarting anything (the socat pty tests). No code text reaches the logs
// or Stats.
//
// # Caveats
//
// On Linux a read that times out and a read from an unplugged device look
// the same (0 bytes, io.EOF); the scanner tells them apart by how long the
// read took. Reads time out every 100 ms, the shortest VTIME: half frames are
// therefore detected up to 100 ms after InterByteTimeout, and Run returns up
// to 100 ms after cancellation.
package scanner
