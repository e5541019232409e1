package bus

import "strings"

// topicKind is what a request topic is for.
type topicKind int

// The request topics, under store/{store}/devices/{device}/.
const (
	topicSightings topicKind = iota // beacon -> agent, no answer
	topicIdentify                   // speaker, kiosk -> agent, answered on identify/reply
	topicEvents                     // kiosk -> agent, answered on events/ack
	topicConsent                    // kiosk -> agent, answered on consent/ack
	numTopics
)

var topicNames = [numTopics]string{"sightings", "identify", "events", "consent"}

// replySuffixes are the answer topics, by request topic; sightings have none.
var replySuffixes = [numTopics]string{"", "identify/reply", "events/ack", "consent/ack"}

func (k topicKind) String() string {
	if k < 0 || k >= numTopics {
		return "unknown"
	}
	return topicNames[k]
}

func (k topicKind) answered() bool { return replySuffixes[k] != "" }

// topics names the topics of one store: store/{store}/devices/{device}/...
type topics struct {
	prefix string // "store/{store}/devices/"
}

func newTopics(storeID string) topics {
	return topics{prefix: "store/" + storeID + "/devices/"}
}

func (t topics) request(device string, k topicKind) string {
	return t.prefix + device + "/" + topicNames[k]
}

func (t topics) reply(device string, k topicKind) string {
	return t.prefix + device + "/" + replySuffixes[k]
}

// filters are the subscriptions that receive every device's requests.
func (t topics) filters() []string {
	out := make([]string, numTopics)
	for k := range numTopics {
		out[k] = t.request("+", k)
	}
	return out
}

// parse reads a request topic. The device id must have the form of a
// configured id; whether it is configured is for the caller to check.
func (t topics) parse(topic string) (device string, kind topicKind, ok bool) {
	rest, ok := strings.CutPrefix(topic, t.prefix)
	if !ok {
		return "", 0, false
	}
	device, name, ok := strings.Cut(rest, "/")
	if !ok || !namePattern.MatchString(device) {
		return "", 0, false
	}
	for k := range numTopics {
		if name == topicNames[k] {
			return device, k, true
		}
	}
	return "", 0, false
}
