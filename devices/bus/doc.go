// Package bus is the device MQTT bus: how the store's IoT devices reach the
// agent. Beacons publish sightings, smart speakers ask who a spoken loyalty
// number or phone number is, kiosks record events and change consent; the
// agent answers each device on its own reply topic, with the consent-scoped
// slice for that device's configured purpose and nothing more.
//
// # Basics
//
// Every topic is under store/{store}/devices/{device}/ (README.md has the
// table and payloads). A [Bus] runs in one of two modes:
//   - embedded (the gateway default): an MQTT broker inside the agent
//     (github.com/mochi-mqtt/server/v2). Each device connects with its own
//     username and password, under its own id as client id, and the broker
//     lets it publish only to its own request topics and read only its own
//     answer topics. The agent talks to the broker through mochi's inline
//     client.
//   - external: the agent is a client of the store's broker
//     (github.com/eclipse/paho.mqtt.golang), which authenticates devices
//     and enforces their topics.
//
// Run it with [Bus.Run]; stop it by cancelling the context. [Bus.Stats]
// counts requests by topic, refusals by [Code], drops and connections.
// Payloads are JSON objects of at most [MaxPayload] bytes, decoded
// strictly; a refused request is answered with a code and a reason.
//
// # What it owns, and what it must never do
//
// The package owns the broker or the client, the device credentials and
// topic rules, the decoding of payloads, and the answers. It calls the
// agent core through [Core] (identify, capture, set consent) and nothing
// else. It must never:
//   - take a purpose from a payload to answer an identify: the device's
//     configuration says which purpose it serves;
//   - take a device id for a customer: the {device} of a topic names the
//     device, and is recorded as the event's device, never as a userId or
//     anonymousId; a sighting carries no customer;
//   - tie two requests of a shared device together: a kiosk or speaker
//     serves one shopper after another, and each request stands alone;
//   - acknowledge an event or a consent change before the agent made it
//     durable;
//   - log or count a payload, an identifier or an answer; logs carry the
//     device id, the topic kind and the outcome. The broker's own log lines
//     pass through an allowlist, since mochi logs whole packets;
//   - block a broker or paho callback: requests go to bounded queues owned
//     by the bus's workers, and are dropped and counted when full.
//
// # Invariants the tests protect
//
// 4, consent-scoped: an identify answer holds only the attributes of the
// device's purpose, and reflects a consent withdrawn a moment earlier over
// the bus. 10, no PII in diagnostics: no log line and no error answer holds
// a customer's e-mail, name or loyalty number. Shared devices never merge
// customers: two shoppers at one speaker get two separate answers, and a
// sighting never names anyone. Also: a device cannot publish to, or read,
// another device's topics; a wrong password is refused at connect; every
// decoder refuses what breaks its rules, whatever the bytes (the fuzz
// tests).
//
// # Caveats
//
// In embedded mode a device that publishes at QoS 1 to a topic it may not
// use is disconnected (MQTT 3.1.1 has no negative PUBACK); at QoS 0 the
// message is dropped silently. A device may not set a will, since the
// broker publishes wills without asking the ACL. Requests that arrive while
// the agent is stopped are lost in both modes (the agent's session is
// clean): devices retry, with the same messageId for events.
package bus
