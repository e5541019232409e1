package localapi

import (
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// permission is what a route needs and a listener grants.
type permission uint8

const (
	// permRead: the daemon's own state, never personal data (status,
	// doctor, outbox stats, logs, config).
	permRead permission = 1 << iota
	// permWrite: customers' data, masked or not, and anything that changes
	// state (identify, events, the preference centre, enrolment, lookup,
	// outbox peek, live scans, resync, compact).
	permWrite
)

// route is one entry of the handler table. An endpoint is added with a
// route here, its handler, its path in openapi.yaml (TestOpenAPIMatchesRoutes
// checks both ways) and a Client method.
type route struct {
	method string
	path   string // a ServeMux pattern without the method: "/v1/profiles/{userId}"
	perm   permission
	body   int64 // the body limit; 0: the route takes no body
	serve  func(s *Server, r *http.Request, body []byte) (status int, resp any, err error)
}

// routes is the handler table. The technician routes (storectl) come
// last; they call the daemon's Technician.
var routes = []route{
	{http.MethodPost, "/v1/identify", permWrite, maxBody, (*Server).serveIdentify},
	{http.MethodPost, "/v1/events", permWrite, maxEventBody, (*Server).serveEvent},
	{http.MethodGet, "/v1/profiles/{userId}", permWrite, 0, (*Server).serveHeld},
	{http.MethodPost, "/v1/profiles/{userId}/consent", permWrite, maxBody, (*Server).serveConsent},
	{http.MethodPost, "/v1/profiles/{userId}/rights", permWrite, maxBody, (*Server).serveRights},
	{http.MethodPost, "/v1/enrol", permWrite, maxBody, (*Server).serveEnrol},
	{http.MethodGet, "/v1/status", permRead, 0, (*Server).serveStatus},
	{http.MethodGet, "/v1/doctor", permRead, 0, (*Server).serveDoctor},
	{http.MethodGet, "/v1/outbox", permRead, 0, (*Server).serveOutbox},
	{http.MethodGet, "/v1/outbox/peek", permWrite, 0, (*Server).servePeek},
	{http.MethodPost, "/v1/sync/resync", permWrite, 0, (*Server).serveResync},
	{http.MethodPost, "/v1/compact", permWrite, 0, (*Server).serveCompact},
	{http.MethodPost, "/v1/lookup", permWrite, maxBody, (*Server).serveLookup},
	{http.MethodGet, "/v1/logs", permRead, 0, (*Server).serveLogs},
	{http.MethodGet, "/v1/config", permRead, 0, (*Server).serveConfig},
	{http.MethodGet, "/v1/scans", permWrite, 0, (*Server).serveScans},
}

// mux routes each path of the table to a dispatcher that picks the route
// by method, and everything else to a JSON 404.
func (s *Server) mux(pol listenerPolicy) *http.ServeMux {
	mux := http.NewServeMux()
	var paths []string
	byPath := map[string][]route{}
	for _, rt := range routes {
		if byPath[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		byPath[rt.path] = append(byPath[rt.path], rt)
	}
	for _, p := range paths {
		mux.Handle(p, s.dispatch(pol, p, byPath[p]))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Reason: "no such route: openapi.yaml lists them"})
	})
	return mux
}

func (s *Server) dispatch(pol listenerPolicy, path string, rts []route) http.Handler {
	var methods []string
	for _, rt := range rts {
		methods = append(methods, rt.method)
	}
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rw, ok := w.(*recorder); ok {
			rw.info.route = path
		}
		i := slices.IndexFunc(rts, func(rt route) bool { return rt.method == r.Method })
		if i < 0 {
			w.Header().Set("Allow", allow)
			s.writeError(w, &APIError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Reason: "method not allowed: see the Allow header"})
			return
		}
		s.serve(w, r, pol, rts[i])
	})
}

// serve checks the permission and the body, then runs the route's handler
// and writes its answer or its error.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, pol listenerPolicy, rt route) {
	if pol.grant&rt.perm == 0 {
		s.writeError(w, &APIError{Status: http.StatusForbidden, Code: CodeForbidden, Reason: "this listener does not permit this route"})
		return
	}
	var body []byte
	if rt.body > 0 {
		if !jsonContent(r.Header.Get("Content-Type")) {
			s.writeError(w, &APIError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Reason: "Content-Type must be application/json"})
			return
		}
		var err error
		if body, err = readBody(w, r, rt.body); err != nil {
			s.fail(w, err)
			return
		}
	}
	status, resp, err := rt.serve(s, r, body)
	if err != nil {
		s.fail(w, err)
		return
	}
	if fn, ok := resp.(streamFunc); ok {
		s.stream(w, r, pol, fn)
		return
	}
	writeJSON(w, status, resp)
}

// fail writes err's response; an internal error goes to the log line.
func (s *Server) fail(w http.ResponseWriter, err error) {
	e, internal := errorOf(err)
	if rw, ok := w.(*recorder); ok && internal {
		rw.info.err = err
	}
	s.writeError(w, e)
}

// jsonContent reports whether a Content-Type is application/json, in UTF-8
// if a charset is given.
func jsonContent(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func (s *Server) serveIdentify(r *http.Request, body []byte) (int, any, error) {
	req, err := decodeIdentify(body)
	if err != nil {
		return 0, nil, err
	}
	id, err := s.b.Identify(r.Context(), req.agent())
	for i := range id.Attributes {
		id.Attributes[i].Value = jsonValue(id.Attributes[i].Value)
	}
	return http.StatusOK, id, err
}

// serveEvent answers 202 only once Capture returned, that is once the event
// is fsynced (or durably held, or dropped by policy: the outcome says).
func (s *Server) serveEvent(r *http.Request, body []byte) (int, any, error) {
	req, err := decodeEvent(body)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.b.Capture(r.Context(), req.agent())
	return http.StatusAccepted, res, err
}

func (s *Server) serveHeld(r *http.Request, _ []byte) (int, any, error) {
	id := r.PathValue("userId")
	if err := checkUserID(id); err != nil {
		return 0, nil, err
	}
	held, err := s.b.Held(r.Context(), id)
	for i := range held.Attributes {
		held.Attributes[i].Value = jsonValue(held.Attributes[i].Value)
	}
	return http.StatusOK, held, err
}

func (s *Server) serveConsent(r *http.Request, body []byte) (int, any, error) {
	id := r.PathValue("userId")
	if err := checkUserID(id); err != nil {
		return 0, nil, err
	}
	req, err := decodeConsent(body)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.b.SetConsent(r.Context(), req.agent(id))
	return http.StatusOK, res, err
}

func (s *Server) serveRights(r *http.Request, body []byte) (int, any, error) {
	id := r.PathValue("userId")
	if err := checkUserID(id); err != nil {
		return 0, nil, err
	}
	req, err := decodeRights(body)
	if err != nil {
		return 0, nil, err
	}
	err = s.b.Request(r.Context(), req.agent(id))
	return http.StatusAccepted, RightsResult{Right: req.Right}, err
}

func (s *Server) serveEnrol(r *http.Request, body []byte) (int, any, error) {
	req, err := decodeEnrol(body)
	if err != nil {
		return 0, nil, err
	}
	anon, err := s.b.Enroll(r.Context(), req.agent())
	return http.StatusCreated, EnrolResult{AnonymousID: anon}, err
}

func (s *Server) serveStatus(r *http.Request, _ []byte) (int, any, error) {
	var st Status
	if s.status != nil {
		var err error
		if st, err = s.status.Status(r.Context()); err != nil {
			return 0, nil, err
		}
	}
	st.Rejects = append(st.Rejects, s.apiRejects()...)
	return http.StatusOK, st, nil
}

// jsonValue makes an attribute value encodable as JSON. An object nested in
// a value comes back from the store's CBOR as map[interface{}]interface{},
// which encoding/json refuses; its keys are strings on the wire, so they
// are written as such.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonValue(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = jsonValue(e)
		}
		return s
	}
	return v
}
