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
//	GET    /pace/networks          every named network: options and live figures
//	GET    /pace/networks/<name>   one
//	PATCH  /pace/networks/<name>   change it live: {"preset": "3g"}, {"loss": "2%"}
//	DELETE /pace/networks/<name>   back to the loaded config
//
// A change applies at once to the network's links, and so to the streams
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
	name := strings.TrimPrefix(r.URL.Path, "/pace/networks/")
	n, ok := lookupNamed(name)
	if !ok {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no network named %q in the loaded config", name)}
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
		}
		patch, err := decodePatch(body)
		if err == nil {
			err = n.change(patch, time.Now())
		}
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("network %q: %w", name, err)}
		}
	case http.MethodDelete:
		n.restore(time.Now())
	default:
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed (want GET, PATCH or DELETE)", r.Method)}
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
