// Command caddy-pace is Caddy with its standard modules and caddy-pace's
// pace handler.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-pace/caddy-pace/module"
)

func main() {
	caddycmd.Main()
}
