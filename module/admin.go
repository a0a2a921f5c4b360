package pace

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin API of named networks, served on Caddy's admin
// endpoint only, under its access controls:
//
//	GET    /pace/networks                    every named network: options, live figures, links
//	GET    /pace/networks/<name>             one
//	PATCH  /pace/networks/<name>             change it live: {"preset": "3g"}, {"loss": "2%"}
//	DELETE /pace/networks/<name>             back to the loaded config
//	GET    /pace/networks/<name>/links/<key> one link (key path-escaped)
//	PATCH  /pace/networks/<name>/links/<key> change that link only
//	DELETE /pace/networks/<name>/links/<key> back to the network's conditions
//
// A change applies at once to the links it reaches, and so to the streams
// and uploads in flight; it lasts until it is deleted or the next config
// load.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.pace",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the routes of the named networks.
func (a adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/pace/networks", Handler: caddy.AdminHandlerFunc(a.list)},
		{Pattern: "/pace/networks/", Handler: caddy.AdminHandlerFunc(a.one)},
	}
}

func (adminAPI) list(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed (want GET)", r.Method)}
	}
	states := []networkState{}
	for _, n := range namedNetworks() {
		states = append(states, n.state())
	}
	return writeJSON(w, states)
}

func (adminAPI) one(w http.ResponseWriter, r *http.Request) error {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/pace/networks/")
	name, escapedKey, isLink := strings.Cut(path, "/links/")
	n, ok := lookupNamed(name)
	if !ok {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no network named %q in the loaded config", name)}
	}
	var key string
	if isLink {
		var err error
		if key, err = parseLinkKey(escapedKey); err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("network %q: %w", name, err)}
		}
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
		}
		patch, err := decodePatch(body)
		switch {
		case err != nil:
		case isLink:
			err = n.changeLink(key, patch, time.Now())
		default:
			err = n.change(patch, time.Now())
		}
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("network %q: %w", name, err)}
		}
	case http.MethodDelete:
		if isLink {
			n.restoreLink(key, time.Now())
		} else {
			n.restore(time.Now())
		}
	default:
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed (want GET, PATCH or DELETE)", r.Method)}
	}
	if isLink {
		return writeJSON(w, n.link(key))
	}
	return writeJSON(w, n.state())
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	err := json.NewEncoder(w).Encode(v)
	if err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	return nil
}

// Interface guard
var _ caddy.AdminRouter = (*adminAPI)(nil)
