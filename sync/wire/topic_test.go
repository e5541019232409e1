package wire

import (
	"strings"
	"testing"
)

func TestTopics(t *testing.T) {
	s := Scope{Tenant: "acme", Store: "store_7", Agent: "pos-1"}
	want := map[TopicKind]string{
		TopicEvents:      "cdp/v1/acme/up/store_7/pos-1/events",
		TopicSyncRequest: "cdp/v1/acme/up/store_7/pos-1/sync",
		TopicStatus:      "cdp/v1/acme/up/store_7/pos-1/status",
		TopicChanges:     "cdp/v1/acme/down/store_7/changes",
		TopicAcks:        "cdp/v1/acme/down/store_7/pos-1/acks",
		TopicSyncReply:   "cdp/v1/acme/down/store_7/pos-1/sync",
	}
	for k, name := range want {
		t.Run(k.String(), func(t *testing.T) {
			got := must[string](t)(s.Topic(k))
			if got != name {
				t.Fatalf("Topic() = %q, want %q", got, name)
			}
			kind, scope, err := ParseTopic(name)
			wantErr(t, err)
			wantScope := s
			if k == TopicChanges {
				wantScope.Agent = ""
			}
			if kind != k || scope != wantScope {
				t.Fatalf("ParseTopic() = %v %+v", kind, scope)
			}
			if k.Down() != strings.Contains(name, "/down/") {
				t.Fatalf("Down() = %v", k.Down())
			}
		})
	}
}

func TestTopicRejects(t *testing.T) {
	for _, name := range []string{
		"",
		"cdp/v1/acme/up/s1/a1",
		"cdp/v2/acme/up/s1/a1/events",
		"mqtt/v1/acme/up/s1/a1/events",
		"cdp/v1/acme/sideways/s1/a1/events",
		"cdp/v1/acme/up/s1/a1/acks",
		"cdp/v1/acme/down/s1/a1/events",
		"cdp/v1/acme/down/s1/a1/changes",
		"cdp/v1/acme/up/s1/events",
		"cdp/v1/acme/down/s1/changes/extra",
		"cdp/v1//up/s1/a1/events",
		"cdp/v1/acme/up/+/a1/events",
		"cdp/v1/acme/up/s1/#/events",
		"cdp/v1/acme/up/s 1/a1/events",
		"cdp/v1/acme/up/s1/" + strings.Repeat("a", 65) + "/events",
		"/cdp/v1/acme/up/s1/a1/events",
		"cdp/v1/acme/up/s1/a1/events/",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseTopic(name)
			wantErr(t, err, ErrBadTopic)
		})
	}
}

func TestTopicBuildRejects(t *testing.T) {
	cases := []struct {
		name  string
		scope Scope
		kind  TopicKind
	}{
		{"no tenant", Scope{Store: "s", Agent: "a"}, TopicEvents},
		{"no agent", Scope{Tenant: "t", Store: "s"}, TopicAcks},
		{"wildcard store", Scope{Tenant: "t", Store: "+", Agent: "a"}, TopicEvents},
		{"unknown kind", Scope{Tenant: "t", Store: "s", Agent: "a"}, TopicKind(99)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.scope.Topic(tc.kind)
			wantErr(t, err, ErrBadTopic)
		})
	}
	if _, err := (Scope{Tenant: "t", Store: "s"}).Topic(TopicChanges); err != nil {
		t.Fatalf("changes needs no agent: %v", err)
	}
}

func TestUplinkFilter(t *testing.T) {
	if got := must[string](t)(UplinkFilter("acme")); got != "cdp/v1/acme/up/+/+/+" {
		t.Fatalf("UplinkFilter() = %q", got)
	}
	_, err := UplinkFilter("a/b")
	wantErr(t, err, ErrBadTopic)
}
