package wire

import (
	"fmt"
	"strings"
)

// TopicKind names one of the six topics of protocol v1.
type TopicKind uint8

// The topics of protocol v1. "Up" topics go from an agent to the central,
// "down" topics from the central to the agents of a store.
const (
	// TopicEvents, cdp/v1/{t}/up/{s}/{a}/events, carries EventBatch.
	TopicEvents TopicKind = iota + 1
	// TopicSyncRequest, cdp/v1/{t}/up/{s}/{a}/sync, carries SyncRequest.
	TopicSyncRequest
	// TopicStatus, cdp/v1/{t}/up/{s}/{a}/status, carries AgentStatus.
	TopicStatus
	// TopicChanges, cdp/v1/{t}/down/{s}/changes, carries Signed(Change)
	// to every agent of the store.
	TopicChanges
	// TopicAcks, cdp/v1/{t}/down/{s}/{a}/acks, carries Signed(Ack).
	TopicAcks
	// TopicSyncReply, cdp/v1/{t}/down/{s}/{a}/sync, carries
	// Signed(ChangeSet).
	TopicSyncReply
)

// topicSpec is how a kind's topic name is built.
type topicSpec struct {
	down  bool
	agent bool // the name has an {a} segment
	leaf  string
	name  string // for String
}

var topicSpecs = map[TopicKind]topicSpec{
	TopicEvents:      {leaf: "events", agent: true, name: "events"},
	TopicSyncRequest: {leaf: "sync", agent: true, name: "sync-request"},
	TopicStatus:      {leaf: "status", agent: true, name: "status"},
	TopicChanges:     {down: true, leaf: "changes", name: "changes"},
	TopicAcks:        {down: true, leaf: "acks", agent: true, name: "acks"},
	TopicSyncReply:   {down: true, leaf: "sync", agent: true, name: "sync-reply"},
}

// String returns a short name of k for logs and metrics.
func (k TopicKind) String() string {
	if s, ok := topicSpecs[k]; ok {
		return s.name
	}
	return fmt.Sprintf("TopicKind(%d)", uint8(k))
}

// Down reports whether k's messages go from the central to the store, and
// so are signed.
func (k TopicKind) Down() bool { return topicSpecs[k].down }

// Scope is the tenant, store and agent a topic belongs to. Agent is empty
// for TopicChanges, which every agent of a store shares.
type Scope struct {
	// Tenant, Store and Agent are the {t}, {s} and {a} segments, each
	// matching [A-Za-z0-9_-]{1,64}.
	Tenant string
	Store  string
	Agent  string
}

// Topic returns the name of k's topic in s. It fails with ErrBadTopic when
// a segment that k's topic needs does not match [A-Za-z0-9_-]{1,64}.
func (s Scope) Topic(k TopicKind) (string, error) {
	spec, ok := topicSpecs[k]
	if !ok {
		return "", fmt.Errorf("%w: unknown topic kind %d", ErrBadTopic, uint8(k))
	}
	if err := s.check(spec.agent); err != nil {
		return "", err
	}
	dir := "up"
	if spec.down {
		dir = "down"
	}
	parts := []string{"cdp", "v1", s.Tenant, dir, s.Store}
	if spec.agent {
		parts = append(parts, s.Agent)
	}
	return strings.Join(append(parts, spec.leaf), "/"), nil
}

func (s Scope) check(withAgent bool) error {
	if !ValidID(s.Tenant) {
		return fmt.Errorf("%w: tenant is not a valid id", ErrBadTopic)
	}
	if !ValidID(s.Store) {
		return fmt.Errorf("%w: store is not a valid id", ErrBadTopic)
	}
	if withAgent && !ValidID(s.Agent) {
		return fmt.Errorf("%w: agent is not a valid id", ErrBadTopic)
	}
	return nil
}

// ParseTopic tells which topic name is, and the scope it names. Agent is
// empty for TopicChanges. Any other name fails with ErrBadTopic.
func ParseTopic(name string) (TopicKind, Scope, error) {
	p := strings.Split(name, "/")
	if len(p) < 6 || len(p) > 7 || p[0] != "cdp" || p[1] != "v1" {
		return 0, Scope{}, fmt.Errorf("%w: not a cdp/v1 topic", ErrBadTopic)
	}
	down := p[3] == "down"
	if !down && p[3] != "up" {
		return 0, Scope{}, fmt.Errorf("%w: direction is not up or down", ErrBadTopic)
	}
	withAgent := len(p) == 7
	for k, spec := range topicSpecs {
		if spec.down != down || spec.agent != withAgent || spec.leaf != p[len(p)-1] {
			continue
		}
		s := Scope{Tenant: p[2], Store: p[4]}
		if withAgent {
			s.Agent = p[5]
		}
		if err := s.check(withAgent); err != nil {
			return 0, Scope{}, err
		}
		return k, s, nil
	}
	return 0, Scope{}, fmt.Errorf("%w: unknown topic", ErrBadTopic)
}

// UplinkFilter returns the MQTT subscription filter that matches every up
// topic of a tenant, for a central: cdp/v1/{t}/up/+/+/+.
func UplinkFilter(tenant string) (string, error) {
	if !ValidID(tenant) {
		return "", fmt.Errorf("%w: tenant is not a valid id", ErrBadTopic)
	}
	return "cdp/v1/" + tenant + "/up/+/+/+", nil
}
