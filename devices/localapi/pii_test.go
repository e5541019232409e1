package localapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The second customer, who enrols at a kiosk during the test.
const (
	enrolCard  = "4111111111111111"
	enrolEmail = "grace.hopper@example.org"
	enrolName  = "Grace Hopper"
	phone      = "+447700900123"
)

// piiRequest is a request of the battery; path may hold {anon}, the
// anonymous id of the enrolment.
type piiRequest struct {
	name, method, path, body string
	header                   http.Header
}

func post(name, path, body string) piiRequest {
	return piiRequest{name: name, method: "POST", path: path, body: body, header: jsonHeader()}
}

func get(name, path string) piiRequest { return piiRequest{name: name, method: "GET", path: path} }

// piiBattery uses every route, with personal data in every place a client
// could put it, on success and on every kind of error.
func piiBattery() []piiRequest {
	esc := url.PathEscape
	return []piiRequest{
		post("identify card", "/v1/identify", `{"scan":"`+card+`","purpose":"loyalty","device":"pos-1"}`),
		post("identify card with spaces", "/v1/identify", `{"scan":"7992 7398 713","purpose":"analytics","device":"pos-1"}`),
		post("identify QR", "/v1/identify", `{"scan":"LOYALTY:`+card+`","purpose":"service","device":"pos-1"}`),
		post("identify e-mail", "/v1/identify", `{"kind":"email","value":"`+strings.ToUpper(email)+`","purpose":"marketing","device":"pos-1"}`),
		post("identify phone", "/v1/identify", `{"kind":"phone","value":"`+phone+`","purpose":"loyalty","device":"pos-1"}`),
		post("identify mistyped card", "/v1/identify", `{"scan":"79927398710","purpose":"loyalty","device":"pos-1"}`),
		post("identify bad e-mail", "/v1/identify", `{"kind":"email","value":"ada.lovelace@@example.com","purpose":"loyalty","device":"pos-1"}`),
		post("identify name as e-mail", "/v1/identify", `{"kind":"email","value":"`+name+`","purpose":"loyalty","device":"pos-1"}`),
		post("identify e-mail as purpose", "/v1/identify", `{"scan":"`+card+`","purpose":"`+email+`","device":"pos-1"}`),
		post("identify name as device", "/v1/identify", `{"scan":"`+card+`","purpose":"loyalty","device":"`+name+`"}`),
		post("identify unknown purpose", "/v1/identify", `{"scan":"`+card+`","purpose":"ada_lovelace","device":"pos-1"}`),
		post("identify e-mail as field", "/v1/identify", `{"scan":"`+card+`","purpose":"loyalty","device":"pos-1","`+email+`":"`+name+`"}`),
		post("identify e-mail of wrong type", "/v1/identify", `{"scan":["`+email+`"],"purpose":"loyalty","device":"pos-1"}`),
		post("identify malformed around e-mail", "/v1/identify", `{"scan":"`+email+`" "`+name+`"}`),
		post("identify two values", "/v1/identify", `{"scan":"`+card+`","purpose":"loyalty","device":"pos-1"}{"scan":"`+email+`"}`),
		post("event with personal data", "/v1/events", `{"event":"Order Completed","userId":"`+userID+`","device":"pos-1","properties":{"email":"`+email+`","name":"`+name+`","loyalty":"`+card+`"},"traits":{"phone":"`+phone+`"}}`),
		post("event named after the customer", "/v1/events", `{"event":"`+name+`","device":"pos-1","properties":{"card":"`+card+`"}}`),
		post("event e-mail as messageId", "/v1/events", `{"messageId":"`+email+`","event":"x","device":"pos-1"}`),
		post("event e-mail as purpose", "/v1/events", `{"event":"x","device":"pos-1","purpose":"`+email+`"}`),
		post("event e-mail as event name", "/v1/events", `{"event":"`+email+`","device":"pos-1"}`),
		post("event too deep", "/v1/events", `{"event":"x","device":"pos-1","properties":`+strings.Repeat(`{"`+email+`":`, 9)+`"`+name+`"`+strings.Repeat(`}`, 9)+`}`),
		post("event too large encoded", "/v1/events", `{"event":"x","device":"pos-1","properties":{"email":"`+email+`","pad":"`+strings.Repeat(name, 2800)+`"}}`),
		post("event over the body limit", "/v1/events", `{"event":"x","device":"pos-1","properties":{"pad":"`+strings.Repeat(email, 2000)+`"}}`),
		{name: "event as text/plain", method: "POST", path: "/v1/events", body: `{"event":"x","device":"pos-1","properties":{"email":"` + email + `"}}`,
			header: http.Header{"Content-Type": {"text/plain"}}},
		{name: "event from a web page", method: "POST", path: "/v1/events", body: `{"event":"x","device":"pos-1","properties":{"email":"` + email + `"}}`,
			header: http.Header{"Content-Type": {"application/json"}, "Origin": {"http://kiosk.example"}}},
		get("held", "/v1/profiles/"+userID),
		get("held by e-mail", "/v1/profiles/"+esc(email)),
		get("held by name", "/v1/profiles/"+esc(name)),
		get("held by card", "/v1/profiles/"+card),
		{name: "delete by e-mail", method: "DELETE", path: "/v1/profiles/" + esc(email)},
		get("unknown route with e-mail", "/v1/"+esc(email)),
		post("consent bad status", "/v1/profiles/"+esc(email)+"/consent", `{"purpose":"marketing","status":"`+name+`","device":"kiosk-1"}`),
		post("consent unknown purpose", "/v1/profiles/"+userID+"/consent", `{"purpose":"ada","status":"granted","device":"kiosk-1"}`),
		post("consent withdraw", "/v1/profiles/"+userID+"/consent", `{"purpose":"marketing","status":"withdrawn","device":"kiosk-1"}`),
		post("rights bad right", "/v1/profiles/"+esc(email)+"/rights", `{"right":"`+email+`","device":"kiosk-1"}`),
		post("rights access", "/v1/profiles/"+userID+"/rights", `{"right":"access","device":"kiosk-1"}`),
		post("enrol", "/v1/enrol", `{"scan":"`+enrolCard+`","purpose":"loyalty","device":"kiosk-1","traits":{"name":"`+enrolName+`","email":"`+enrolEmail+`"}}`),
		get("held enrolled", "/v1/profiles/{anon}"),
		post("identify enrolled", "/v1/identify", `{"scan":"`+enrolCard+`","purpose":"loyalty","device":"pos-1"}`),
		post("enrol again", "/v1/enrol", `{"scan":"`+enrolCard+`","purpose":"loyalty","device":"kiosk-1","traits":{"name":"`+enrolName+`"}}`),
		post("enrol bad e-mail", "/v1/enrol", `{"kind":"email","value":"`+enrolName+`","purpose":"loyalty","device":"kiosk-1"}`),
		post("enrol e-mail", "/v1/enrol", `{"kind":"email","value":"`+enrolEmail+`","purpose":"marketing","device":"kiosk-1","traits":{"name":"`+enrolName+`"}}`),
		get("status", "/v1/status"),
		post("rights erase", "/v1/profiles/"+userID+"/rights", `{"right":"erase","device":"kiosk-1"}`),
	}
}

// TestNoPersonalDataInResponsesOrLogs protects invariant 10: the seeded
// e-mail addresses, names, loyalty numbers and phone number appear in no
// response body, on any route, errors included, and in no log line (the
// API's, the agent's and the store's); user ids and anonymous ids appear in
// no log line either.
//
// Identify and GET /v1/profiles return a customer's attributes: that is
// their job. The seeded name is an attribute of a purpose the customer
// denied, so the cache never holds it, and the enrolled customer's name
// travels only in a held event: neither may come back.
func TestNoPersonalDataInResponsesOrLogs(t *testing.T) {
	pii := []string{email, name, "Lovelace", card, "7992 7398 713", "79927398710", phone, "7700900123",
		enrolCard, enrolEmail, enrolName, "Hopper"}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.seed(t)
			var anon string
			for _, rq := range piiBattery() {
				path := strings.ReplaceAll(rq.path, "{anon}", anon)
				res := f.raw(t, tr, rq.method, path, rq.header, rq.body)
				if rq.name == "enrol" {
					var out struct{ AnonymousID string }
					if err := json.Unmarshal(res.body, &out); err != nil || out.AnonymousID == "" {
						t.Fatalf("enrol: %d %s", res.status, res.body)
					}
					anon = out.AnonymousID
				}
				if s := findAny(string(res.body), pii); s != "" {
					t.Errorf("%s: response %d holds %q: %s", rq.name, res.status, s, res.body)
				}
			}
			logs := f.logs.String()
			if !strings.Contains(logs, `"route":"/v1/profiles/{userId}"`) || !strings.Contains(logs, `"code":"invalid_identifier"`) {
				t.Fatalf("the request log lines are missing:\n%s", logs)
			}
			if s := findAny(logs, append(pii, userID, anon)); s != "" {
				t.Errorf("logs hold %q:\n%s", s, logs)
			}
		})
	}
}

// findAny returns the first of needles found in s, ignoring case, or "".
func findAny(s string, needles []string) string {
	s = strings.ToLower(s)
	for _, n := range needles {
		if strings.Contains(s, strings.ToLower(n)) {
			return n
		}
	}
	return ""
}
