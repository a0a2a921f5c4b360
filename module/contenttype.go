package pace

import "strings"

// contentTypeFor returns the Content-Type a paced response gets in place of
// current, and whether to set it at all; dest is the request's
// Sec-Fetch-Dest.
func (o *options) contentTypeFor(current, dest string) (string, bool) {
	switch o.contentType {
	case contentTypeKeep:
		return "", false
	case contentTypeAuto:
		if !isRead(dest) || !isBuffered(current) {
			return "", false
		}
		return "application/octet-stream", true
	default:
		return o.contentType, true
	}
}

// isRead reports whether a request with this Sec-Fetch-Dest is one whose
// body a script reads (fetch, XHR: "empty") or one from a client that is not
// a browser (no Sec-Fetch-Dest): the only readers the rewrite is for. A
// stylesheet, a script, a font, a worker, an image or a page must keep its
// type, or the browser refuses it or downloads it.
func isRead(dest string) bool {
	return dest == "" || dest == "empty"
}

// isBuffered reports whether a body of this Content-Type is one that
// compressors (Caddy's encode among them) and intermediaries hold back:
// missing or text-like. Server-Sent Events are text but must keep their type
// for EventSource; images, audio and video are never rewritten.
func isBuffered(contentType string) bool {
	mt := mediaType(contentType)
	switch {
	case mt == "":
		return true
	case mt == "text/event-stream":
		return false
	case strings.HasPrefix(mt, "text/"):
		return true
	}
	return strings.HasPrefix(mt, "application/") && (isJSONOrXML(mt) || javaScriptTypes[mt] || ndjsonTypes[mt])
}

// mediaType is a Content-Type's essence, lower case, without parameters.
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// nosniffKeeps reports whether X-Content-Type-Options: nosniff leaves a
// response of this Content-Type, to a request for this Sec-Fetch-Dest,
// working as it would without it. nosniff is what lets a script read a text
// body as it arrives (the browser no longer holds back its first 1 KiB to
// sniff it), but with the wrong type it makes the browser refuse a script or
// a stylesheet that runs today, and block a cross-origin image served as
// text. So it goes only where the type is already right.
func nosniffKeeps(dest, contentType string) bool {
	mt := mediaType(contentType)
	switch {
	case isRead(dest):
		return true // fetch and XHR are never blocked for their type
	case scriptDestinations[dest]:
		return javaScriptTypes[mt]
	case dest == "style":
		return mt == "text/css"
	case dest == "json":
		return isJSON(mt)
	case mt == "" || sniffedTypes[mt]:
		return false // the browser decides what it is from its bytes
	case isNavigation(dest):
		return true
	}
	// Opaque response blocking refuses these under nosniff for an image,
	// a video or any other no-cors read.
	return mt != "text/plain" && mt != "text/html" && !isJSONOrXML(mt)
}

// isNavigation reports whether dest loads a page or frame, which the browser
// shows with the type it is given.
func isNavigation(dest string) bool {
	switch dest {
	case "document", "iframe", "frame", "embed", "object", "fencedframe":
		return true
	}
	return false
}

// scriptDestinations are the Sec-Fetch-Dest values that a browser runs as a
// script, refusing them under nosniff unless their type is JavaScript.
var scriptDestinations = map[string]bool{
	"script": true, "worker": true, "sharedworker": true, "serviceworker": true,
	"audioworklet": true, "paintworklet": true,
}

// javaScriptTypes are the JavaScript MIME type essences of the WHATWG MIME
// Sniffing standard.
var javaScriptTypes = map[string]bool{
	"text/javascript": true, "application/javascript": true, "application/x-javascript": true,
	"application/ecmascript": true, "application/x-ecmascript": true, "text/ecmascript": true,
	"text/javascript1.0": true, "text/javascript1.1": true, "text/javascript1.2": true,
	"text/javascript1.3": true, "text/javascript1.4": true, "text/javascript1.5": true,
	"text/jscript": true, "text/livescript": true, "text/x-ecmascript": true, "text/x-javascript": true,
}

// sniffedTypes are the types a browser treats as unknown and sniffs.
var sniffedTypes = map[string]bool{
	"unknown/unknown": true, "application/unknown": true, "*/*": true,
}

var ndjsonTypes = map[string]bool{
	"application/x-ndjson": true, "application/ndjson": true, "application/jsonl": true,
	"application/x-jsonlines": true, "application/jsonlines": true,
}

func isJSON(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func isJSONOrXML(mt string) bool {
	return isJSON(mt) || mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml")
}
