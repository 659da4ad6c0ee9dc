package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage/internal/watch"
)

// channelOf is the NOTIFY channel of a schema's trail commits: one per schema, so that stores in
// other schemas of the database (tests, other deployments) do not wake each other's watchers.
func channelOf(schema string) string {
	h := sha256.Sum256([]byte(schema))
	return "scimserver_trail_" + hex.EncodeToString(h[:8])
}

// listener holds one connection that LISTENs on the channel, and wakes the watchers of the
// tenant each notification names. While it is not connected it cannot know what committed, so
// whenever it loses its connection and when it has a new one, it wakes every watcher: a woken
// watcher reads the trail again, which is always correct.
type listener struct {
	cfg      *pgx.ConnConfig
	channel  string
	watchers *watch.Set
	cancel   context.CancelFunc
	done     chan struct{}
}

// listen connects and LISTENs before it returns, so that a Watch after Open misses no commit,
// then follows notifications in the background until stop.
func listen(ctx context.Context, cfg *pgx.ConnConfig, channel string, w *watch.Set) (*listener, error) {
	conn, err := connectListening(ctx, cfg, channel)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	l := &listener{cfg: cfg, channel: channel, watchers: w, cancel: cancel, done: make(chan struct{})}
	go l.run(bg, conn)
	return l, nil
}

func connectListening(ctx context.Context, cfg *pgx.ConnConfig, channel string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// reconnectDelay bounds the wait between attempts to get the listening connection back.
const reconnectDelay = time.Second

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				l.watchers.WakeAll()
				break
			}
			l.watchers.Notify(n.Payload)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reconnectDelay):
		}
		c, err := connectListening(ctx, l.cfg, l.channel)
		if err == nil {
			conn = c
			l.watchers.WakeAll() // commits while it was away were not heard
		}
	}
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

// Watch returns a channel closed after the next commit, by any process sharing the database,
// that appends to tenant's trail; also when the store closes, and when the listening connection
// was lost.
func (s *Store) Watch(tenant string) <-chan struct{} { return s.watchers.Watch(tenant) }
