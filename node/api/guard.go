package api

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The checks in this file decide who may use the API. What they trust and
// refuse is written down in docs/security.md ("Local API"); keep the two in
// step.

// errForbidden marks a request the node will not serve for this client
// (403).
var errForbidden = errors.New("refused")

// securityHeaders go on every response: no page of another site may frame
// the UI (clickjacking), guess content types, embed API answers as scripts
// or images, or learn the node's URLs from a Referer.
func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Referrer-Policy", "no-referrer")
}

// tokenOK reports whether r carries one of the node's tokens
// ("Authorization: Bearer …"). A browser cannot add that header to a
// request of another site without a CORS preflight, which the node never
// grants, so a request with the token is never a cross-site forgery.
func (s *Server) tokenOK(r *http.Request) bool {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || h == "" {
		return false
	}
	for _, t := range []string{s.cfg.Token, s.cfg.LocalToken} {
		if t != "" && subtle.ConstantTimeCompare([]byte(h), []byte(t)) == 1 {
			return true
		}
	}
	return false
}

// safeMethod reports whether m cannot change anything on the node.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// apiPath reports whether p is an API route rather than the UI's files.
func apiPath(p string) bool { return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/") }

// refuse returns the status and the reason r is not served (0, "" when it
// is). In order: the peer's address (loopback, or the token); the Host
// header (DNS rebinding); the Origin and Sec-Fetch-Site headers (pages of
// other sites); the body's type (only JSON, and uploads from the node's
// own page, may change anything).
func (s *Server) refuse(r *http.Request) (int, string) {
	tok := s.tokenOK(r)
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); !tok && (ip == nil || !ip.IsLoopback()) {
		if s.cfg.Token == "" {
			return http.StatusForbidden, "this node only answers requests from this computer (127.0.0.1); to allow other computers, start it with --token and send \"Authorization: Bearer <token>\""
		}
		return http.StatusForbidden, "missing or wrong token: send \"Authorization: Bearer <token>\" with the token the node was started with"
	}
	if !tok {
		// A name that merely resolves to 127.0.0.1 must not reach the API
		// (DNS rebinding: the attacker's page then counts as same-origin).
		if !s.knownHost(r) {
			return http.StatusForbidden, fmt.Sprintf("host %q is not this computer: open the node as http://127.0.0.1:PORT or http://localhost:PORT", r.Host)
		}
		// A page of another site (or a sandboxed frame, Origin "null") must
		// not drive the API: only the node's own page may.
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
			if o == "null" {
				return http.StatusForbidden, "requests from sandboxed or local-file pages (Origin: null) are refused: open the node's own page instead"
			}
			return http.StatusForbidden, fmt.Sprintf("requests from pages of %s are refused: open the node's own page (%s) instead", o, ownOrigin(r))
		}
		// Browsers that send Sec-Fetch-Site say where the request comes
		// from even when they send no Origin. Following a link to the UI
		// from another site is fine; anything else must be same-origin.
		if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" &&
			!(safeMethod(r.Method) && r.Method != http.MethodOptions && !apiPath(r.URL.Path)) {
			return http.StatusForbidden, fmt.Sprintf("requests from pages of other sites (Sec-Fetch-Site: %s) are refused: open the node's own page instead", sfs)
		}
	}
	if !safeMethod(r.Method) {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch ct {
		case "application/json":
		case "multipart/form-data":
			// A page of another site can send a multipart body without a
			// preflight, so an upload must show it comes from the node's
			// own page (browsers send Origin with every POST), or carry
			// the token.
			if !tok && !sameOrigin(r.Header.Get("Origin"), r) {
				return http.StatusForbidden, "uploads (multipart/form-data) are accepted from the node's own page only: use the web UI, or send \"Origin: " + ownOrigin(r) + "\" or the token"
			}
		default:
			got := r.Header.Get("Content-Type")
			if got == "" {
				got = "none"
			}
			return http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s needs \"Content-Type: application/json\" (got %s): send the body as JSON with that header (curl: -H 'Content-Type: application/json')", r.Method, r.URL.Path, got)
		}
	}
	return 0, ""
}

// ownOrigin is the origin of the node's pages as this request reached it:
// scheme, host and port.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sameOrigin reports whether origin is the node's own: same scheme, host
// and port as the request's URL (the Host header has been checked before;
// the browser derives Origin and Host from the URLs of the page and of the
// request, so they match only for the node's own page).
func sameOrigin(origin string, r *http.Request) bool {
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	want, _ := url.Parse(ownOrigin(r))
	return want != nil && strings.EqualFold(u.Scheme, want.Scheme) && strings.EqualFold(u.Hostname(), want.Hostname()) &&
		portOf(u) == portOf(want)
}

// portOf is u's port, the scheme's default when none is written.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// knownHost reports whether r's Host header names this computer: a
// loopback name or address, the address the connection arrived on, or one
// of Config.Hosts.
func (s *Server) knownHost(r *http.Request) bool {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "" {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	for _, name := range s.cfg.Hosts {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ta, ok := la.(*net.TCPAddr); ok && ta.IP.Equal(ip) && !ip.IsUnspecified() {
			return true
		}
	}
	return false
}

// checkPath refuses a file or folder named in a request body that lies
// outside the adapters and uploads folders, unless the request carries the
// token: a path in a body can name any file the user can read (training on
// it and publishing the result would leak it). Symbolic links are followed
// before the check.
func (s *Server) checkPath(r *http.Request, p string) error {
	if s.tokenOK(r) {
		return nil
	}
	real := resolve(p)
	for _, root := range []string{s.cfg.AdapterDir, s.cfg.DataDir} {
		rr := resolve(root)
		if rel, err := filepath.Rel(rr, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is outside the adapters folder (%s): copy it there, upload the data through the web UI, or send the node's token (\"Authorization: Bearer …\"; orchmind's CLI reads it from the node's data folder)",
		errForbidden, p, resolve(s.cfg.AdapterDir))
}

// resolve makes p absolute, clean, and free of symbolic links as far as
// it exists.
func resolve(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = filepath.Clean(p)
	}
	// Resolve the longest existing prefix, keep the rest lexically.
	rest := ""
	for cur := abs; ; {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(real, rest)
		} else if !errors.Is(err, os.ErrNotExist) {
			return abs
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
