package localapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
)

var transports = []string{"unix", "tcp"}

// clientCase is one call through the Client. A case with a code expects
// that error; otherwise check looks at the result.
type clientCase struct {
	name   string
	call   func(ctx context.Context, c *localapi.Client) (any, error)
	status int
	code   string
	reason string // when set, the error's exact reason
	check  func(t *testing.T, got any)
}

func identify(req localapi.IdentifyRequest) func(context.Context, *localapi.Client) (any, error) {
	return func(ctx context.Context, c *localapi.Client) (any, error) { return c.Identify(ctx, req) }
}

func capture(req localapi.EventRequest) func(context.Context, *localapi.Client) (any, error) {
	return func(ctx context.Context, c *localapi.Client) (any, error) { return c.Capture(ctx, req) }
}

func setConsent(id string, req localapi.ConsentRequest) func(context.Context, *localapi.Client) (any, error) {
	return func(ctx context.Context, c *localapi.Client) (any, error) { return c.SetConsent(ctx, id, req) }
}

func rights(id string, req localapi.RightsRequest) func(context.Context, *localapi.Client) (any, error) {
	return func(ctx context.Context, c *localapi.Client) (any, error) { return nil, c.Rights(ctx, id, req) }
}

func enrol(req localapi.EnrolRequest) func(context.Context, *localapi.Client) (any, error) {
	return func(ctx context.Context, c *localapi.Client) (any, error) { return c.Enrol(ctx, req) }
}

func held(id string) func(context.Context, *localapi.Client) (any, error) {
	return func(ctx context.Context, c *localapi.Client) (any, error) { return c.Held(ctx, id) }
}

const newCard = "4111111111111111" // Luhn-valid, not seeded

// clientCases run in order on one fixture: enrolment comes before the
// identify that finds the enrolled customer.
var clientCases = []clientCase{
	{name: "identify loyalty scan", call: identify(localapi.IdentifyRequest{Scan: card, Purpose: "loyalty", Device: "pos-1"}),
		check: func(t *testing.T, got any) {
			id := got.(agent.Identity)
			if !id.Known || id.UserID != userID || !id.Permitted || len(id.Attributes) != 1 || id.Attributes[0].Name != "tier" {
				t.Fatalf("got %+v", id)
			}
		}},
	{name: "identify typed e-mail", call: identify(localapi.IdentifyRequest{Kind: "email", Value: " Ada.Lovelace@Example.COM", Purpose: "analytics", Device: "pos-1"}),
		check: func(t *testing.T, got any) {
			if id := got.(agent.Identity); !id.Known || id.Attributes[0].Name != "segment" {
				t.Fatalf("got %+v", id)
			}
		}},
	{name: "identify unknown card", call: identify(localapi.IdentifyRequest{Scan: "4012888888881881", Purpose: "loyalty", Device: "pos-1"}),
		check: func(t *testing.T, got any) {
			if id := got.(agent.Identity); id.Known || id.AnonymousID == "" {
				t.Fatalf("got %+v", id)
			}
		}},
	{name: "identify bad check digit", call: identify(localapi.IdentifyRequest{Scan: "79927398710", Purpose: "loyalty", Device: "pos-1"}),
		status: 422, code: localapi.CodeInvalidIdentifier, reason: "bad_check_digit"},
	{name: "identify bad e-mail", call: identify(localapi.IdentifyRequest{Kind: "email", Value: "ada@@example.com", Purpose: "loyalty", Device: "pos-1"}),
		status: 422, code: localapi.CodeInvalidIdentifier, reason: "bad_format"},
	{name: "identify unknown kind", call: identify(localapi.IdentifyRequest{Kind: "passport", Value: "X1", Purpose: "loyalty", Device: "pos-1"}),
		status: 422, code: localapi.CodeInvalidIdentifier, reason: "unknown_kind"},
	{name: "identify device id", call: identify(localapi.IdentifyRequest{Scan: deviceID, Purpose: "loyalty", Device: "pos-1"}),
		status: 422, code: localapi.CodeBlockedIdentifier, reason: "blocked"},
	{name: "identify unknown purpose", call: identify(localapi.IdentifyRequest{Scan: card, Purpose: "telepathy", Device: "pos-1"}),
		status: 400, code: localapi.CodeUnknownPurpose},
	{name: "identify scan and kind", call: identify(localapi.IdentifyRequest{Scan: card, Kind: "email", Value: email, Purpose: "loyalty", Device: "pos-1"}),
		status: 400, code: localapi.CodeBadRequest, reason: "give either scan, or kind and value, not both"},
	{name: "identify without device", call: identify(localapi.IdentifyRequest{Scan: card, Purpose: "loyalty"}),
		status: 400, code: localapi.CodeBadRequest},
	{name: "capture purchase", call: capture(localapi.EventRequest{MessageID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Event: "Order Completed",
		UserID: userID, Device: "pos-1", Properties: map[string]any{"total": 12.5, "items": 2}}),
		check: func(t *testing.T, got any) {
			r := got.(agent.CaptureResult)
			if r.Outcome != agent.OutcomeQueued || r.MessageID != "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" || r.Purpose != "service" || r.Seq == 0 {
				t.Fatalf("got %+v", r)
			}
		}},
	{name: "capture anonymous", call: capture(localapi.EventRequest{Event: "Product Viewed", Device: "kiosk-1"}),
		check: func(t *testing.T, got any) {
			if r := got.(agent.CaptureResult); r.Outcome != agent.OutcomeAnonymous || !event.ValidID(r.MessageID) {
				t.Fatalf("got %+v", r)
			}
		}},
	{name: "capture bad messageId", call: capture(localapi.EventRequest{MessageID: "not-a-uuid", Event: "x", Device: "pos-1"}),
		status: 400, code: localapi.CodeBadRequest, reason: "messageId must be a UUID in lower-case canonical form"},
	{name: "capture bad event name", call: capture(localapi.EventRequest{Event: "Order\tCompleted", Device: "pos-1"}),
		status: 400, code: localapi.CodeBadRequest, reason: "event must be 1-128 letters, digits, spaces or _ . : / -"},
	{name: "capture too large once encoded", call: capture(localapi.EventRequest{Event: "Order Completed", Device: "pos-1",
		Properties: map[string]any{"note": strings.Repeat("x", 33<<10)}}),
		status: 413, code: localapi.CodeTooLarge},
	{name: "held", call: held(userID), check: func(t *testing.T, got any) {
		h := got.(agent.HeldData)
		if h.UserID != userID || h.Identifiers != 2 || len(h.Attributes) != 3 || len(h.Consent) != 5 {
			t.Fatalf("got %+v", h)
		}
	}},
	{name: "held unknown profile", call: held("cust-404"), status: 404, code: localapi.CodeUnknownProfile},
	{name: "held user id with a slash", call: held("a/b"), status: 404, code: localapi.CodeUnknownProfile},
	{name: "consent grant", call: setConsent(userID, localapi.ConsentRequest{Purpose: "marketing", Status: "granted", Device: "kiosk-1"}),
		check: func(t *testing.T, got any) {
			if r := got.(agent.ConsentResult); !r.Applied {
				t.Fatalf("got %+v", r)
			}
		}},
	{name: "consent object", call: setConsent(userID, localapi.ConsentRequest{Purpose: "analytics", Status: "objected", Device: "kiosk-1"}),
		check: func(t *testing.T, got any) {
			if r := got.(agent.ConsentResult); !r.Applied || r.Purged != 1 {
				t.Fatalf("got %+v", r)
			}
		}},
	{name: "consent pending refused", call: setConsent(userID, localapi.ConsentRequest{Purpose: "marketing", Status: "pending", Device: "kiosk-1"}),
		status: 400, code: localapi.CodeBadRequest},
	{name: "consent unknown purpose", call: setConsent(userID, localapi.ConsentRequest{Purpose: "telepathy", Status: "granted", Device: "kiosk-1"}),
		status: 400, code: localapi.CodeUnknownPurpose},
	{name: "rights access", call: rights(userID, localapi.RightsRequest{Right: "access", Device: "kiosk-1"})},
	{name: "rights restrict", call: rights(userID, localapi.RightsRequest{Right: "restrict", Device: "kiosk-1"})},
	{name: "restricted profile recognised, nothing shown", call: identify(localapi.IdentifyRequest{Scan: card, Purpose: "loyalty", Device: "pos-1"}),
		check: func(t *testing.T, got any) {
			if id := got.(agent.Identity); !id.Known || !id.Restricted || len(id.Attributes) != 0 {
				t.Fatalf("got %+v", id)
			}
		}},
	{name: "rights unrestrict", call: rights(userID, localapi.RightsRequest{Right: "unrestrict", Device: "kiosk-1"})},
	{name: "rights unknown", call: rights(userID, localapi.RightsRequest{Right: "forget-me-a-bit", Device: "kiosk-1"}),
		status: 400, code: localapi.CodeBadRequest},
	{name: "enrol", call: enrol(localapi.EnrolRequest{Scan: newCard, Purpose: "loyalty", Device: "kiosk-1",
		Traits: map[string]any{"firstName": "Grace"}}),
		check: func(t *testing.T, got any) {
			if !event.ValidID(got.(string)) {
				t.Fatalf("anonymous id %q", got)
			}
		}},
	{name: "enrolled customer is recognised", call: identify(localapi.IdentifyRequest{Scan: newCard, Purpose: "loyalty", Device: "pos-1"}),
		check: func(t *testing.T, got any) {
			if id := got.(agent.Identity); !id.Known || !id.Pending || id.AnonymousID == "" || id.UserID != "" {
				t.Fatalf("got %+v", id)
			}
		}},
	{name: "enrol a known identifier", call: enrol(localapi.EnrolRequest{Scan: card, Purpose: "loyalty", Device: "kiosk-1"}),
		status: 409, code: localapi.CodeAlreadyEnrolled},
	{name: "enrol for a purpose without consent basis", call: enrol(localapi.EnrolRequest{Scan: "5555555555554444", Purpose: "analytics", Device: "kiosk-1"}),
		status: 400, code: localapi.CodeUnknownPurpose},
	{name: "enrol bad check digit", call: enrol(localapi.EnrolRequest{Kind: "loyalty", Value: "5555555555554440", Purpose: "loyalty", Device: "kiosk-1"}),
		status: 422, code: localapi.CodeInvalidIdentifier, reason: "bad_check_digit"},
	{name: "rights erase", call: rights(userID, localapi.RightsRequest{Right: "erase", Device: "kiosk-1"})},
	{name: "erased profile is gone", call: held(userID), status: 404, code: localapi.CodeUnknownProfile},
	{name: "status", call: func(ctx context.Context, c *localapi.Client) (any, error) { return c.Status(ctx) },
		check: func(t *testing.T, got any) {
			st := got.(localapi.Status)
			if st.Version != "test" || st.Outbox.Critical.Records != 2 || st.Scanners[0].Rejects["noise"] != 1 {
				t.Fatalf("got %+v", st)
			}
			i := slices.IndexFunc(st.Rejects, func(r localapi.RejectStatus) bool {
				return r.Source == "api" && r.Reason == localapi.CodeInvalidIdentifier
			})
			// bad check digit, bad e-mail, unknown kind, and the enrolment's
			// bad check digit
			if i < 0 || st.Rejects[i].Count != 4 || st.Rejects[i].Last.IsZero() {
				t.Fatalf("api rejects %+v", st.Rejects)
			}
		}},
}

// TestClientEndpoints drives every route through the Client, over the unix
// socket and over loopback TCP, successes and the agent's refusals.
func TestClientEndpoints(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.seed(t)
			c := f.client(tr)
			for _, tc := range clientCases {
				t.Run(tc.name, func(t *testing.T) {
					got, err := tc.call(context.Background(), c)
					if tc.code == "" {
						if err != nil {
							t.Fatal(err)
						}
						if tc.check != nil {
							tc.check(t, got)
						}
						return
					}
					e := wantAPIError(t, err, tc.status, tc.code)
					if tc.reason != "" && e.Reason != tc.reason {
						t.Fatalf("reason %q, want %q", e.Reason, tc.reason)
					}
				})
			}
		})
	}
}

// TestClientErrorsMatchAgentSentinels checks that a client can branch on a
// refusal as in process, with errors.Is and the IsXxx helpers.
func TestClientErrorsMatchAgentSentinels(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c := f.client("unix")
	ctx := context.Background()
	_, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: "79927398710", Purpose: "loyalty", Device: "pos-1"})
	if !errors.Is(err, ident.ErrInvalid) || errors.Is(err, ident.ErrBlocked) || !localapi.IsInvalidIdentifier(err) {
		t.Fatalf("bad check digit: %v", err)
	}
	_, err = c.Identify(ctx, localapi.IdentifyRequest{Scan: deviceID, Purpose: "loyalty", Device: "pos-1"})
	if !errors.Is(err, ident.ErrBlocked) || !localapi.IsBlockedIdentifier(err) {
		t.Fatalf("blocked: %v", err)
	}
	_, err = c.Held(ctx, "nobody")
	if !errors.Is(err, agent.ErrUnknownProfile) || !localapi.IsUnknownProfile(err) || localapi.IsBadRequest(err) {
		t.Fatalf("unknown profile: %v", err)
	}
	_, err = c.Identify(ctx, localapi.IdentifyRequest{Scan: card, Purpose: "nope", Device: "pos-1"})
	if !errors.Is(err, agent.ErrUnknownPurpose) || !localapi.IsUnknownPurpose(err) {
		t.Fatalf("unknown purpose: %v", err)
	}
	if want := "storeagent: 400 unknown_purpose: "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error text %q", err)
	}
}

// rawCase is a request no Client would send.
type rawCase struct {
	name   string
	method string
	path   string
	header http.Header
	body   string
	status int
	code   string
	reason string
	allow  string // the Allow header of a 405
}

func identifyBody(extra string) string {
	return `{"scan":"` + card + `","purpose":"loyalty","device":"pos-1"` + extra + `}`
}

var rawCases = []rawCase{
	{name: "ok", method: "POST", path: "/v1/identify", header: jsonHeader(), body: identifyBody(""), status: 200},
	{name: "charset utf-8 ok", method: "POST", path: "/v1/identify", header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}}, body: identifyBody(""), status: 200},
	{name: "bad JSON", method: "POST", path: "/v1/identify", header: jsonHeader(), body: `{"scan" "x"}`,
		status: 400, code: localapi.CodeBadRequest, reason: "malformed JSON at byte 9"},
	{name: "truncated JSON", method: "POST", path: "/v1/identify", header: jsonHeader(), body: `{"scan":"x",`,
		status: 400, code: localapi.CodeBadRequest, reason: "the JSON body is truncated"},
	{name: "empty body", method: "POST", path: "/v1/identify", header: jsonHeader(), body: ``,
		status: 400, code: localapi.CodeBadRequest, reason: "the body is empty: a JSON object is required"},
	{name: "not an object", method: "POST", path: "/v1/events", header: jsonHeader(), body: `[{"event":"x"}]`,
		status: 400, code: localapi.CodeBadRequest, reason: "the body must be a JSON object"},
	{name: "two values", method: "POST", path: "/v1/identify", header: jsonHeader(), body: identifyBody("") + identifyBody(""),
		status: 400, code: localapi.CodeBadRequest, reason: "the body must hold exactly one JSON value"},
	{name: "unknown field", method: "POST", path: "/v1/identify", header: jsonHeader(), body: identifyBody(`,"shopper":"x"`),
		status: 400, code: localapi.CodeBadRequest, reason: "the body has an unknown field: openapi.yaml lists the fields of each body"},
	{name: "wrong type", method: "POST", path: "/v1/identify", header: jsonHeader(), body: `{"scan":79927398713,"purpose":"loyalty","device":"pos-1"}`,
		status: 400, code: localapi.CodeBadRequest, reason: "field scan must be a string"},
	{name: "wrong type of timestamp", method: "POST", path: "/v1/events", header: jsonHeader(), body: `{"event":"x","device":"pos-1","timestamp":1.5}`,
		status: 400, code: localapi.CodeBadRequest, reason: "field timestamp must be an integer in range"},
	{name: "properties not an object", method: "POST", path: "/v1/events", header: jsonHeader(), body: `{"event":"x","device":"pos-1","properties":[1]}`,
		status: 400, code: localapi.CodeBadRequest, reason: "field properties must be an object"},
	{name: "properties too deep", method: "POST", path: "/v1/events", header: jsonHeader(),
		body:   `{"event":"x","device":"pos-1","properties":` + strings.Repeat(`{"a":`, 9) + `1` + strings.Repeat(`}`, 9) + `}`,
		status: 400, code: localapi.CodeBadRequest, reason: "properties must nest at most 8 levels"},
	{name: "array too long", method: "POST", path: "/v1/events", header: jsonHeader(),
		body:   `{"event":"x","device":"pos-1","traits":{"a":[` + strings.Repeat(`0,`, 1024) + `0]}}`,
		status: 400, code: localapi.CodeBadRequest, reason: "traits must have at most 1024 members per object or array"},
	{name: "number out of range", method: "POST", path: "/v1/events", header: jsonHeader(), body: `{"event":"x","device":"pos-1","properties":{"n":1e999}}`,
		status: 400, code: localapi.CodeBadRequest, reason: "properties hold a number out of range"},
	{name: "oversized body", method: "POST", path: "/v1/identify", header: jsonHeader(), body: identifyBody(`,"device":"` + strings.Repeat("x", 64<<10) + `"`),
		status: 413, code: localapi.CodeTooLarge, reason: "the body must be at most 64 KiB"},
	{name: "oversized event", method: "POST", path: "/v1/events", header: jsonHeader(), body: `{"event":"x","device":"pos-1","properties":{"p":"` + strings.Repeat("x", 40<<10) + `"}}`,
		status: 413, code: localapi.CodeTooLarge, reason: "the body must be at most 40 KiB"},
	{name: "no content type", method: "POST", path: "/v1/identify", body: identifyBody(""),
		status: 415, code: localapi.CodeUnsupportedMedia},
	{name: "text/plain", method: "POST", path: "/v1/events", header: http.Header{"Content-Type": {"text/plain"}}, body: `{"event":"x","device":"pos-1"}`,
		status: 415, code: localapi.CodeUnsupportedMedia},
	{name: "form", method: "POST", path: "/v1/profiles/cust-1/consent", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: `purpose=marketing`,
		status: 415, code: localapi.CodeUnsupportedMedia},
	{name: "latin-1", method: "POST", path: "/v1/identify", header: http.Header{"Content-Type": {"application/json; charset=iso-8859-1"}}, body: identifyBody(""),
		status: 415, code: localapi.CodeUnsupportedMedia},
	{name: "GET identify", method: "GET", path: "/v1/identify", status: 405, code: localapi.CodeMethodNotAllowed, allow: "POST"},
	{name: "DELETE profile", method: "DELETE", path: "/v1/profiles/cust-1", status: 405, code: localapi.CodeMethodNotAllowed, allow: "GET"},
	{name: "POST status", method: "POST", path: "/v1/status", header: jsonHeader(), body: `{}`, status: 405, code: localapi.CodeMethodNotAllowed, allow: "GET"},
	{name: "OPTIONS preflight", method: "OPTIONS", path: "/v1/events", status: 405, code: localapi.CodeMethodNotAllowed, allow: "POST"},
	{name: "unknown route", method: "GET", path: "/v1/nothing", status: 404, code: localapi.CodeNotFound},
	{name: "unversioned", method: "POST", path: "/identify", header: jsonHeader(), body: identifyBody(""), status: 404, code: localapi.CodeNotFound},
	{name: "userId with a space", method: "GET", path: "/v1/profiles/a%20b", status: 400, code: localapi.CodeBadRequest},
	{name: "userId too long", method: "GET", path: "/v1/profiles/" + strings.Repeat("a", 129), status: 400, code: localapi.CodeBadRequest},
	{name: "Origin refused", method: "POST", path: "/v1/identify", header: http.Header{"Content-Type": {"application/json"}, "Origin": {"http://kiosk.example"}},
		body: identifyBody(""), status: 403, code: localapi.CodeForbidden},
	{name: "null Origin refused", method: "POST", path: "/v1/events", header: http.Header{"Content-Type": {"application/json"}, "Origin": {"null"}},
		body: `{"event":"x","device":"pos-1"}`, status: 403, code: localapi.CodeForbidden},
	{name: "Referer refused", method: "GET", path: "/v1/status", header: http.Header{"Referer": {"http://kiosk.example/page"}}, status: 403, code: localapi.CodeForbidden},
	{name: "foreign Host refused", method: "GET", path: "/v1/status", header: http.Header{"Host": {"rebind.example:8780"}}, status: 403, code: localapi.CodeForbidden},
	{name: "localhost Host ok", method: "GET", path: "/v1/status", header: http.Header{"Host": {"localhost:8780"}}, status: 200},
	{name: "IPv6 loopback Host ok", method: "GET", path: "/v1/status", header: http.Header{"Host": {"[::1]:8780"}}, status: 200},
}

// TestRawRequests sends what a broken or hostile client would, over both
// transports, and checks each refusal's status, code and reason.
func TestRawRequests(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.seed(t)
			for _, tc := range rawCases {
				t.Run(tc.name, func(t *testing.T) {
					res := f.raw(t, tr, tc.method, tc.path, tc.header, tc.body)
					if res.status != tc.status {
						t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
					}
					if h := res.header.Get("Cache-Control"); h != "no-store" {
						t.Errorf("Cache-Control %q", h)
					}
					if tc.code == "" {
						return
					}
					e := res.apiError(t)
					if e.Code != tc.code || tc.reason != "" && e.Reason != tc.reason {
						t.Fatalf("got %s %q, want %s %q", e.Code, e.Reason, tc.code, tc.reason)
					}
					if tc.allow != "" && res.header.Get("Allow") != tc.allow {
						t.Fatalf("Allow %q, want %q", res.header.Get("Allow"), tc.allow)
					}
				})
			}
		})
	}
}

// TestOutboxFull fills an outbox of 3 records (1 reserved for critical
// events) and expects 503 outbox_full with a Retry-After, never a 202.
func TestOutboxFull(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{store: store.Options{Outbox: store.OutboxLimits{
				MaxRecords: 3, ReservedRecords: 1, MaxBytes: 1 << 20, ReservedBytes: 1 << 18}}})
			c := f.client(tr)
			ctx := context.Background()
			purchase := localapi.EventRequest{Event: "Order Completed", Device: "pos-1"}
			for i := range 3 {
				if _, err := c.Capture(ctx, purchase); err != nil {
					t.Fatalf("purchase %d: %v", i, err)
				}
			}
			_, err := c.Capture(ctx, purchase)
			e := wantAPIError(t, err, 503, localapi.CodeOutboxFull)
			if !localapi.IsOutboxFull(err) || !errors.Is(err, store.ErrOutboxFull) || e.RetryAfter != 30*time.Second {
				t.Fatalf("got %+v", e)
			}
			res := f.raw(t, tr, "POST", "/v1/events", jsonHeader(), `{"event":"Order Completed","device":"pos-1"}`)
			if res.status != 503 || res.header.Get("Retry-After") != "30" || res.apiError(t).Code != localapi.CodeOutboxFull {
				t.Fatalf("raw: %d %v %s", res.status, res.header, res.body)
			}
		})
	}
}

// TestNestedAttributeValues: an attribute whose value is an object or an
// array comes back as JSON (the store's CBOR decodes nested objects as
// map[interface{}]interface{}, which encoding/json refuses).
func TestNestedAttributeValues(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.apply(t, agent.Change{Kind: agent.ChangeProfile, Profile: userID, Version: 1, Expires: time.Now().Add(time.Hour).UnixMilli(),
		Idents: [][]byte{identHash("loyalty", card)},
		Attrs: []agent.Attribute{{Name: "prefs", Purpose: "analytics",
			Value: map[string]any{"colour": "blue", "sizes": []any{"M", map[string]any{"shoe": 42}}}}}})
	c := f.client("unix")
	ctx := context.Background()
	want := `map[colour:blue sizes:[M map[shoe:42]]]`
	id, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: card, Purpose: "analytics", Device: "pos-1"})
	if err != nil || len(id.Attributes) != 1 || fmt.Sprint(id.Attributes[0].Value) != want {
		t.Fatalf("identify: %+v %v", id, err)
	}
	h, err := c.Held(ctx, userID)
	if err != nil || len(h.Attributes) != 1 || fmt.Sprint(h.Attributes[0].Value) != want {
		t.Fatalf("held: %+v %v", h, err)
	}
}
