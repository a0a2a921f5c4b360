package pace

import (
	"net/http"
	"strings"
)

// contentTypeFor returns the Content-Type a paced response gets in place of
// current, and whether to set it at all.
func (o *options) contentTypeFor(current string, r *http.Request) (string, bool) {
	switch o.contentType {
	case contentTypeKeep:
		return "", false
	case contentTypeAuto:
		if isNavigation(r) || !isBuffered(current) {
			return "", false
		}
		return "application/octet-stream", true
	default:
		return o.contentType, true
	}
}

// isNavigation reports whether r loads a page or frame: a browser downloads a
// navigation answered with application/octet-stream instead of showing it.
func isNavigation(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Dest") {
	case "document", "iframe", "frame":
		return true
	}
	return false
}

// isBuffered reports whether a body of this Content-Type is one that
// compressors (Caddy's encode among them) and intermediaries hold back:
// missing or text-like. Server-Sent Events are text but must keep their type
// for EventSource; images, audio and video are never rewritten.
func isBuffered(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case mt == "":
		return true
	case mt == "text/event-stream":
		return false
	case strings.HasPrefix(mt, "text/"):
		return true
	case strings.HasPrefix(mt, "application/"):
		sub := mt[len("application/"):]
		return textLikeApplication[sub] || strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml")
	}
	return false
}

// textLikeApplication are the application/* subtypes that are text.
var textLikeApplication = map[string]bool{
	"json": true, "xml": true, "javascript": true, "x-javascript": true, "ecmascript": true,
	"x-ndjson": true, "ndjson": true, "jsonl": true, "x-jsonlines": true, "jsonlines": true,
}
