package ident

import (
	"net/url"
	"strings"
)

// ParseScan reads a scanner payload, already framed and stripped of its AIM
// identifier by the scanner driver, and returns the identifier it carries:
//
//  1. Input over MaxInputLen bytes is refused with ReasonTooLong, invalid
//     UTF-8 or a control character with ReasonBadChars; then the payload is
//     trimmed. A payload that matches r.Blocked or r.DeviceIDs as a whole is
//     refused with ReasonBlocked.
//  2. Digits, with spaces or dashes between them, are a loyalty number,
//     checked as Normalize checks one.
//  3. Otherwise r.QRForms (yielding a loyalty number) and then r.AppForms
//     (yielding an app token) are tried in order; the first form that yields
//     a valid identifier wins. A form that matches but yields a blocked
//     value stops the search with ReasonBlocked. When forms matched but
//     none yielded a valid identifier, the error of the first is returned
//     (a URL of the right host and path without its parameter is
//     ReasonBadFormat).
//  4. Anything else is refused with ReasonUnknownForm.
//
// Errors before a form is found have an empty Kind.
func (r Rules) ParseScan(raw string) (ID, error) {
	s, reason := screen(raw)
	switch {
	case reason != "":
		return ID{}, invalid("", reason)
	case s == "":
		return ID{}, invalid("", ReasonEmpty)
	case r.blocked(s):
		return ID{}, invalid("", ReasonBlocked)
	case plainNumber(s):
		return r.normalize(Loyalty, s)
	}
	var first error
	p := &payload{s: s}
	for _, set := range [...]struct {
		kind  Kind
		forms []string
	}{{Loyalty, r.QRForms}, {App, r.AppForms}} {
		for _, t := range set.forms {
			id, matched, err := r.tryForm(set.kind, t, p)
			switch {
			case !matched:
				continue
			case err == nil:
				return id, nil
			case ReasonOf(err) == ReasonBlocked:
				return ID{}, err
			case first == nil:
				first = err
			}
		}
	}
	if first != nil {
		return ID{}, first
	}
	return ID{}, invalid("", ReasonUnknownForm)
}

// plainNumber reports whether s is digits, maybe grouped by spaces or dashes.
func plainNumber(s string) bool {
	digit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digit = true
		case c == ' ' || c == '-':
		default:
			return false
		}
	}
	return digit
}

// payload is a screened scan, with its URL parsed once, when a URL form
// asks for it.
type payload struct {
	s      string
	u      *url.URL // nil until parsed, or when s is not a URL
	parsed bool
}

func (p *payload) url() *url.URL {
	if !p.parsed {
		p.parsed = true
		if strings.Contains(p.s, "://") {
			if u, err := url.Parse(p.s); err == nil && u.Opaque == "" {
				p.u = u
			}
		}
	}
	return p.u
}

// tryForm matches the scan p against template t. matched is false when p
// does not take that form (or t does not parse); otherwise the extracted
// value is normalised as kind.
func (r Rules) tryForm(kind Kind, t string, p *payload) (id ID, matched bool, err error) {
	if isURLTemplate(t) && p.url() == nil {
		return ID{}, false, nil // spare parsing the template
	}
	f, perr := parseForm(t)
	if perr != nil {
		return ID{}, false, nil
	}
	var v string
	if f.isURL {
		var reason Reason
		v, reason, matched = f.matchURL(p.url())
		if reason != "" {
			return ID{}, matched, invalid(kind, reason)
		}
	} else {
		v, matched = f.matchText(p.s)
	}
	if !matched {
		return ID{}, false, nil
	}
	id, err = r.normalize(kind, strings.TrimSpace(v))
	return id, true, err
}

func (f form) matchText(s string) (string, bool) {
	if len(s) < len(f.prefix)+len(f.suffix) || !strings.HasPrefix(s, f.prefix) || !strings.HasSuffix(s, f.suffix) {
		return "", false
	}
	return s[len(f.prefix) : len(s)-len(f.suffix)], true
}

// matchURL returns the value of f.param in u when u has f's scheme, host
// and path. A URL that matches but holds the parameter not exactly once, or
// holds user info, is matched with ReasonBadFormat.
func (f form) matchURL(u *url.URL) (v string, reason Reason, matched bool) {
	if !strings.EqualFold(u.Scheme, f.scheme) || !strings.EqualFold(u.Host, f.host) || !samePath(u.Path, f.path) {
		return "", "", false
	}
	if u.User != nil {
		return "", ReasonBadFormat, true
	}
	n := 0
	for q := u.RawQuery; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		key, value, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(key); err != nil || key != f.param {
			continue // other parameters are ignored, even malformed ones
		}
		n++
		var err error
		if v, err = url.QueryUnescape(value); err != nil {
			return "", ReasonBadFormat, true
		}
	}
	if n != 1 {
		return "", ReasonBadFormat, true
	}
	return v, "", true
}

func samePath(a, b string) bool {
	if a == "" {
		a = "/"
	}
	if b == "" {
		b = "/"
	}
	return a == b
}
