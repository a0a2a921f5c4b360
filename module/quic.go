package pace

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// An HTTP/3 request has no connection of its own in its context: Caddy's
// ConnContext, through which a TCP connection gets its pacing.Conn, is
// TCP's only. But quic-go derives every request's context from its QUIC
// connection's, which holds the connection's remote address
// (http3.RemoteAddrContextKey): one net.Addr value per connection, the same
// value for all its requests. quicConns keeps a pacing.Conn for each, keyed
// by the address and checked by the value's identity, so that a new
// connection from a port an old one used is a new Conn. A Conn is forgotten
// once unused for an idle timeout (Caddy's default, after which quic-go
// closes the connection too), and at most maxIdleLinks are kept, the least
// recently used going first.
var quicConns = &quicRegistry{m: map[string]*list.Element{}}

// quicIdle is how long an HTTP/3 connection's Conn is kept unused.
const quicIdle = 5 * time.Minute

type quicRegistry struct {
	mu  sync.Mutex
	m   map[string]*list.Element // of *quicConn, by remote address
	lru list.List                // most recently used first
}

type quicConn struct {
	key  string
	addr net.Addr
	conn *pacing.Conn
	used time.Time
}

// conn returns the Conn of r's QUIC connection, made at now if it is new;
// nil if r does not say which connection it came on.
func (reg *quicRegistry) conn(r *http.Request, now time.Time) *pacing.Conn {
	addr, ok := r.Context().Value(http3.RemoteAddrContextKey).(net.Addr)
	if !ok || addr == nil {
		return nil
	}
	key := addr.String()
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for e := reg.lru.Back(); e != nil && now.Sub(e.Value.(*quicConn).used) > quicIdle; e = reg.lru.Back() {
		reg.drop(e)
	}
	if e, ok := reg.m[key]; ok {
		c := e.Value.(*quicConn)
		if c.addr == addr {
			c.used = now
			reg.lru.MoveToFront(e)
			return c.conn
		}
		reg.drop(e) // the port's old connection: this one is new
	}
	c := &quicConn{key: key, addr: addr, conn: pacing.NewQUICConn(now), used: now}
	reg.m[key] = reg.lru.PushFront(c)
	for reg.lru.Len() > maxIdleLinks {
		reg.drop(reg.lru.Back())
	}
	return c.conn
}

func (reg *quicRegistry) drop(e *list.Element) {
	delete(reg.m, e.Value.(*quicConn).key)
	reg.lru.Remove(e)
}
