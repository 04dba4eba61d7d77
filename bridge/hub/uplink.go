package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// Rule is a [[hub.subscribe]] rule: what the hub publishes on Prefix +
// Topic (a filter) is published on the local broker under Topic.
type Rule struct {
	Topic  string
	QoS    byte
	Prefix string
}

// Options configure the link to the central hub.
type Options struct {
	URL, Username, Password, ClientID string
	KeepAlive                         time.Duration
	// Window is how many messages may be sent to the hub and not yet
	// deleted from the queue (a sliding window; 1: strict order);
	// WindowBytes bounds their payloads (default 4 MiB; one larger
	// message still goes, alone).
	Window      int
	WindowBytes int64
	// Subscribe lists hub topics (Prefix+Topic on the hub) whose messages
	// are published on the local broker under Topic.
	Subscribe []Rule
	// RetryMin and RetryMax bound the reconnect backoff (defaults 100ms
	// and 800ms: with the connection and the first publish, the first
	// message goes out within a second of the hub coming back). After
	// LongOutage down (default 2m), or when the hub refuses the login, the
	// bound is RetryLong (default 30s): a box whose hub is away for hours
	// does not connect twice a second, on a paid mobile link, all along.
	RetryMin, RetryMax    time.Duration
	LongOutage, RetryLong time.Duration
	// CAFile verifies the hub's certificate (ssl:// URLs; default: the
	// system's roots); CertFile and KeyFile are this gateway's client
	// certificate, when the hub asks for one.
	CAFile, CertFile, KeyFile string
	// Limits bound the queue; MaxAge drops what waited longer (0: never).
	Limits store.HubLimits
	MaxAge time.Duration
	// Base is the topic API's prefix, "<prefix>/<gateway id>/": Outpost's
	// own topics go to the hub under it (sms/in, sms/status/<id>, …).
	Base string
	// ModemNumbers are the modems' own numbers by modem id, for the
	// "to" of sms/in.
	ModemNumbers map[string]string
	Log          *slog.Logger
}

// Uplink drains the durable hub queue (store.HubMessage rows) to the hub:
// a row leaves the queue only once the hub acknowledged it. Each
// connection gets a fresh paho client whose memory store starts empty, so
// paho never resends on its own: after a reconnect the queue is resent
// from SQLite, oldest first (at most one window of duplicates). The
// session on the hub is persistent when there is a downlink, so the hub
// keeps what it sends while the box is away.
type Uplink struct {
	opt   Options
	store *store.Store
	log   *slog.Logger
	wake  chan struct{}
	// wasUp is set when a session connects (Run's backoff starts over);
	// state and since are the link's state as last reported and since
	// when it is so (Run's).
	wasUp atomic.Bool
	state struct {
		reported, connected bool
		since               time.Time
	}
	// statusTopic carries "online"/"offline" (retained; the will).
	statusTopic string
	// statsTopic carries the queue's counters (retained), so the hub sees
	// what the limits dropped.
	statsTopic string
	// downlink takes what the hub publishes on downTopic; the hub gets
	// its PUBACK only when downlink returned nil (it committed).
	downTopic string
	downlink  func(payload []byte) error
	// local publishes a message from the hub on the local broker.
	local func(topic string, payload []byte, retain bool, qos byte)
	// report is told the link's state on every change.
	report func(LinkState)
	// paused, when set, says an operator paused the hub: nothing more
	// of the queue is published (it keeps its order) until Wake after
	// it says false; the link stays up for what the hub sends.
	paused func() bool
	// waiting, when set (tests), is told each wait between attempts: the
	// backoff it was drawn from and the wait itself.
	waiting func(backoff, d time.Duration)
	// acked runs in the transaction that deletes messages the hub
	// acknowledged, with the deliveries they were copies of
	// (HubMessage.DeliveryID; none: not called).
	acked func(tx *store.Tx, deliveryIDs []int64) error
	// forwarded counts the messages the hub acknowledged since start
	// (their deletes committed): one atomic add per commit of deletes,
	// read when status asks (see Status).
	forwarded atomic.Int64
	// suspectFrom and suspectTo are the queue ids of the messages
	// published and not acknowledged when the hub last dropped the
	// connection (0: none): they are sent again one at a time, so that
	// the next drop names its message. struck is the message the last
	// drop was on (the oldest not acknowledged); strikes counts the drops
	// since on it sent alone, each soon after it was published: at
	// strikesToSetAside it is set aside (poison must not block the
	// queue). Owned by Run.
	suspectFrom, suspectTo, struck int64
	strikes                        int
}

// A hub that refuses a message drops the connection as it reads it: a
// drop counts against the message sent alone only when it comes within
// refusedWithin of its publish, and strikesToSetAside such drops in a row
// set it aside. (At two drops, one of them anywhere, a link cut every
// 20–200 ms set a message the hub took aside about once in a few hundred
// cuts: it never reached the hub.)
const (
	refusedWithin     = 2 * time.Second
	strikesToSetAside = 2
)

// suspect says whether queue id id goes alone (see suspectFrom).
func (u *Uplink) suspect(id int64) bool {
	return u.suspectTo != 0 && id >= u.suspectFrom && id <= u.suspectTo
}

// LinkState is the hub link's state as status shows it.
type LinkState struct {
	URL       string    `json:"url"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Forwarded int64     `json:"forwarded"` // acknowledged by the hub since start
}

func (u *Uplink) setState(connected bool, err error) {
	// Since is when the link came up or went down, not the last attempt:
	// how long the hub has been away.
	if !u.state.reported || u.state.connected != connected {
		u.state.reported, u.state.connected, u.state.since = true, connected, time.Now()
	}
	if connected {
		u.wasUp.Store(true)
	}
	if u.report == nil {
		return
	}
	st := LinkState{URL: bridge.RedactURLs(u.opt.URL), Connected: connected, Since: u.state.since, Forwarded: u.forwarded.Load()}
	if err != nil {
		st.LastError = err.Error()
	}
	u.report(st)
}

// Forwarded is how many messages the hub acknowledged since start.
func (u *Uplink) Forwarded() int64 { return u.forwarded.Load() }

// liveLink is the link's state as recorded at its last change, with the
// forwarded count read when it is shown (JSON), not when it was recorded:
// status is current without a report per message.
type liveLink struct {
	st LinkState
	u  *Uplink
}

func (l liveLink) MarshalJSON() ([]byte, error) {
	st := l.st
	st.Forwarded = l.u.Forwarded()
	return json.Marshal(st)
}

// NewUplink returns an uplink on s.
func NewUplink(opt Options, s *store.Store, statusTopic string, log *slog.Logger) *Uplink {
	if opt.Window < 1 {
		opt.Window = 256
	}
	if opt.WindowBytes <= 0 {
		opt.WindowBytes = 4 << 20
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = 100 * time.Millisecond
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = 800 * time.Millisecond
	}
	if opt.LongOutage <= 0 {
		opt.LongOutage = 2 * time.Minute
	}
	if opt.RetryLong <= 0 {
		opt.RetryLong = 30 * time.Second
	}
	if opt.KeepAlive <= 0 {
		opt.KeepAlive = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Uplink{opt: opt, store: s, log: log.With("component", "hub-link"), wake: make(chan struct{}, 1), statusTopic: statusTopic}
}

// Wake tells the uplink the queue has grown.
func (u *Uplink) Wake() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Run keeps the link up and the queue draining until ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	backoff := u.opt.RetryMin
	u.setState(false, nil)
	// The reconnect attempts are logged once a minute at most (with how
	// many were held back): one line per attempt wrote a hundred a
	// minute to the SD card while the hub was away.
	quiet := slog.New(bridge.NewQuietHandler(u.log.Handler(), time.Minute))
	downSince := time.Now() // monotonic
	for ctx.Err() == nil {
		sent, err := u.session(ctx)
		u.setState(false, err)
		if ctx.Err() != nil {
			return nil
		}
		if sent > 0 || u.wasUp.Swap(false) {
			backoff, downSince = u.opt.RetryMin, time.Now()
		}
		bound := u.opt.RetryMax
		if time.Since(downSince) > u.opt.LongOutage || refusedLogin(err) {
			bound = max(bound, u.opt.RetryLong)
		}
		quiet.Warn("hub link down; retrying", "url", bridge.RedactURLs(u.opt.URL), "err", err, "in", backoff,
			"down_for", time.Since(downSince).Round(time.Second))
		u.expire(ctx)
		// Full jitter on the upper half: many boxes do not reconnect in
		// step after the hub restarts.
		d := backoff/2 + rand.N(backoff/2+1)
		if u.waiting != nil {
			u.waiting(backoff, d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		backoff = min(2*backoff, bound)
	}
	return nil
}

// subscribed waits for a SUBSCRIBE's answer: nil once the hub granted
// it, else why not (no answer in 15 s: the error said "<nil>").
func subscribed(t paho.Token) error {
	if !t.WaitTimeout(15 * time.Second) {
		return errors.New("no SUBACK from the hub within 15s")
	}
	return t.Error()
}

// refusedLogin says whether err is the hub refusing the login (a wrong
// password, a client id it does not allow): trying again at once will
// not change its mind.
func refusedLogin(err error) bool {
	if err == nil {
		return false
	}
	e := err.Error()
	return strings.Contains(e, "not Authorized") || strings.Contains(e, "bad user name or password") || strings.Contains(e, "identifier rejected")
}

var errLost = errors.New("connection lost")

// session connects once and drains until the connection fails. It
// returns how many messages the hub acknowledged.
func (u *Uplink) session(ctx context.Context) (int, error) {
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(u.opt.URL).SetClientID(u.opt.ClientID).
		// A persistent session on the hub keeps the downlink
		// subscription and what the hub sends while we are away; paho's
		// own store stays empty (a fresh client each time), so paho never
		// resends: the queue in SQLite does.
		SetCleanSession(u.downlink == nil).SetAutoReconnect(false).SetConnectRetry(false).
		SetAutoAckDisabled(true).
		// MQTT 3.1.1 only: left at 0, paho tries 3.1.1 and then 3.1 on
		// any failure, two connections per attempt to a hub that is down.
		SetProtocolVersion(4).
		SetKeepAlive(u.opt.KeepAlive).SetPingTimeout(10 * time.Second).SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).SetOrderMatters(true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if u.opt.Username != "" {
		opts.SetUsername(u.opt.Username).SetPassword(u.opt.Password)
	}
	if strings.HasPrefix(u.opt.URL, "ssl://") || strings.HasPrefix(u.opt.URL, "tls://") {
		tc, err := u.tlsConfig()
		if err != nil {
			return 0, err
		}
		opts.SetTLSConfig(tc)
	}
	if u.statusTopic != "" {
		opts.SetBinaryWill(u.statusTopic, []byte("offline"), 1, true)
	}
	if u.downlink != nil {
		// Set before connecting: a persistent session gets what the hub
		// kept for us right after CONNACK, before any Subscribe returns.
		opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			if m.Topic() == u.downTopic && m.Retained() {
				// A retained send would be sent again on every
				// reconnect (every restart, another paid SMS).
				u.refuseRetained(m.Payload())
				m.Ack()
				return
			}
			if m.Topic() != u.downTopic {
				if u.local != nil {
					u.local(m.Topic(), m.Payload(), m.Retained(), m.Qos())
				}
				m.Ack()
				return
			}
			if err := u.downlink(m.Payload()); err != nil {
				u.log.Error("send from the hub not stored; not acknowledged, the hub sends it again", "err", err)
				return
			}
			m.Ack()
		})
	}
	client := paho.NewClient(opts)
	tok := client.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		client.Disconnect(0)
		return 0, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		// A clean stop sends DISCONNECT, after which the hub does not
		// publish the will: say "offline" ourselves.
		if ctx.Err() != nil && u.statusTopic != "" && client.IsConnectionOpen() {
			client.Publish(u.statusTopic, 1, true, "offline").WaitTimeout(2 * time.Second)
		}
		client.Disconnect(250)
	}()
	u.log.Info("hub link up", "url", bridge.RedactURLs(u.opt.URL))
	u.setState(true, nil)
	if u.downlink != nil {
		st := client.Subscribe(u.downTopic, 1, nil) // the default handler takes it
		if err := subscribed(st); err != nil {
			return 0, fmt.Errorf("subscribe %s: %v", u.downTopic, err)
		}
		for _, f := range u.opt.Subscribe {
			st := client.Subscribe(f.Prefix+f.Topic, f.QoS, nil)
			if err := subscribed(st); err != nil {
				return 0, fmt.Errorf("subscribe %s: %v", f.Prefix+f.Topic, err)
			}
		}
	}
	// "online" only once the downlink is subscribed: from then on what
	// the hub sends for us is kept for us.
	if u.statusTopic != "" {
		client.Publish(u.statusTopic, 1, true, "online")
	}
	return u.drain(ctx, client, lost)
}

// inFlight is a message published to the hub, not yet acknowledged.
type inFlight struct {
	id   int64
	tok  paho.Token
	at   time.Time // when it was published
	size int64
	// delivery is the delivery the message is a copy of (0: none).
	delivery int64
}

// deleted is the outcome of deleting acknowledged messages from the
// queue.
type deleted struct {
	n   int
	err error
}

// drain publishes the queue to the hub as a sliding window: at most
// opt.Window messages are published and not yet deleted from the queue
// (so a cut or a crash sends at most one window again). As the hub
// acknowledges the oldest, they are deleted in the background (one commit
// for all acknowledged at once) and as many new ones go out, so the link
// never idles waiting for a commit. It returns how many messages left the
// queue.
func (u *Uplink) drain(ctx context.Context, client paho.Client, lost chan error) (sent int, err error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		flight   []inFlight
		inBytes  int64 // flight's payloads
		lastID   int64 // the newest message published
		deleting int   // acknowledged, delete not yet committed
		dels     = make(chan deleted, u.opt.Window+1)
	)
	settle := func(d deleted) error {
		deleting -= d.n
		if d.err != nil {
			return d.err
		}
		sent += d.n
		u.forwarded.Add(int64(d.n))
		return nil
	}
	defer func() {
		// Let the deletes already submitted finish, so the next session
		// does not send those messages again.
		for deleting > 0 {
			if e := settle(<-dels); e != nil && err == nil {
				err = e
			}
		}
	}()
	var lastStats store.HubStats
	var statsAt, housekept time.Time
	for {
		if time.Since(housekept) >= time.Second { // not once a window
			housekept = time.Now()
			u.expire(ctx)
			lastStats, statsAt = u.publishStats(client, lastStats, statsAt)
		}
		// A suspect goes alone: published once all before it are
		// acknowledged, and nothing after it until it is.
		probing := len(flight) > 0 && u.suspect(flight[len(flight)-1].id)
		held := u.paused != nil && u.paused()
		if room := u.opt.Window - len(flight) - deleting; room > 0 && !probing && !held && inBytes < u.opt.WindowBytes {
			var batch []store.HubMessage
			err := u.store.View(ctx, func(tx *store.Tx) (err error) {
				batch, err = tx.HubBatchBytes(lastID, room, u.opt.WindowBytes-inBytes)
				return err
			})
			if err != nil {
				return sent, err
			}
			for _, m := range batch {
				alone := u.suspect(m.ID)
				if alone && len(flight) > 0 || !client.IsConnectionOpen() {
					// (paho's Publish on a connection just lost waits
					// out the write timeout.)
					break
				}
				flight = append(flight, inFlight{m.ID, client.Publish(m.Topic, m.QoS, m.Retain, m.Payload), time.Now(), int64(len(m.Payload)), m.DeliveryID})
				inBytes += int64(len(m.Payload))
				lastID = m.ID
				if alone {
					break
				}
			}
		}
		var head <-chan struct{}
		wait := 30 * time.Second
		if len(flight) > 0 {
			head = flight[0].tok.Done()
			// The oldest has 30 s for its PUBACK, however many other
			// events come meanwhile.
			if wait -= time.Since(flight[0].at); wait <= 0 {
				return sent, errors.New("no PUBACK within 30s")
			}
		}
		timeout := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timeout.Stop()
			return sent, nil
		case err := <-lost:
			timeout.Stop()
			err = fmt.Errorf("%w: %v", errLost, err)
			u.blame(ctx, flight, err)
			return sent, err
		case d := <-dels:
			timeout.Stop()
			if err := settle(d); err != nil {
				return sent, err
			}
			continue
		case <-u.wake:
			timeout.Stop()
			continue
		case <-tick.C:
			timeout.Stop()
			continue
		case <-timeout.C:
			if len(flight) > 0 {
				return sent, errors.New("no PUBACK within 30s")
			}
			continue
		case <-head:
			timeout.Stop()
		}
		// Every acknowledged message at the head of the window.
		n := 0
		for ; n < len(flight) && isDone(flight[n].tok); n++ {
			if err := flight[n].tok.Error(); err != nil {
				err = fmt.Errorf("publish: %w", err)
				if !client.IsConnectionOpen() {
					err = u.lostWith(ctx, flight, lost, err)
				}
				return sent, err
			}
		}
		// A token can complete because the connection closed; only a
		// connection still up proves the hub took them.
		if !client.IsConnectionOpen() {
			return sent, u.lostWith(ctx, flight, lost, errLost)
		}
		ids := make([]int64, n)
		var dids []int64 // the deliveries that reached the hub
		for i := range n {
			ids[i] = flight[i].id
			if d := flight[i].delivery; d != 0 {
				dids = append(dids, d)
			}
			if u.suspectTo != 0 && ids[i] >= u.suspectTo {
				u.suspectFrom, u.suspectTo = 0, 0 // the hub took them all
			}
			if ids[i] == u.struck {
				u.struck, u.strikes = 0, 0
			}
			inBytes -= flight[i].size
		}
		flight = flight[n:]
		deleting += n
		u.store.Submit(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			if err := tx.DeleteHub(ids); err != nil || len(dids) == 0 || u.acked == nil {
				return err
			}
			return u.acked(tx, dids)
		}, func(err error) { dels <- deleted{len(ids), err} })
	}
}

// lostWith handles a connection found closed with flight published:
// paho tells the loss (lost) once it has handled what came before it,
// the acknowledgements the hub sent before it dropped the connection
// too, and then the messages not acknowledged are blamed.
func (u *Uplink) lostWith(ctx context.Context, flight []inFlight, lost chan error, err error) error {
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case e := <-lost:
		err = fmt.Errorf("%w: %v", errLost, e)
	case <-t.C:
	case <-ctx.Done():
		return err
	}
	u.blame(ctx, flight, err)
	return err
}

// blame is told the hub dropped the connection with flight published.
// The oldest not acknowledged is struck, and all those not acknowledged
// are sent again one at a time. When the hub drops the connection on the
// struck one, sent alone, strikesToSetAside times running, each time
// within refusedWithin of its publish, it is set aside (kept, with the
// reason, out of the queue) so that the rest goes on. (When the first
// drop named the wrong message, its acknowledgement lost with the
// connection, the drop on the right one sent alone strikes it: one drop
// more.) A hub or a link merely away does not drop the connection that
// often running on the same message, alone, each time as it is sent; a
// write or keep-alive that timed out (the link's doing) never counts.
func (u *Uplink) blame(ctx context.Context, flight []inFlight, cause error) {
	i := 0
	for ; i < len(flight); i++ {
		if t := flight[i].tok; !isDone(t) || t.Error() != nil {
			break
		}
	}
	if i == len(flight) {
		return // everything published was acknowledged
	}
	id := flight[i].id
	// A write or a keep-alive that timed out is the link's doing (a
	// large message on a slow uplink), not the hub refusing the message.
	timedOut := errors.Is(cause, os.ErrDeadlineExceeded) || strings.Contains(cause.Error(), "i/o timeout") ||
		strings.Contains(cause.Error(), "pingresp not received")
	if len(flight) != 1 || id != u.struck || timedOut || time.Since(flight[i].at) > refusedWithin {
		if id != u.struck {
			u.struck, u.strikes = id, 0
		}
		u.suspectFrom, u.suspectTo = id, max(u.suspectTo, flight[len(flight)-1].id)
		u.log.Info("the hub dropped the connection with messages not acknowledged: they go one at a time",
			"queue_ids", fmt.Sprintf("%d–%d", u.suspectFrom, u.suspectTo), "struck", id, "alone", len(flight) == 1)
		return
	}
	if u.strikes++; u.strikes < strikesToSetAside {
		u.log.Info("the hub dropped the connection as it was sent this message alone; it goes alone again",
			"queue_id", id, "strikes", u.strikes)
		return
	}
	u.struck, u.strikes = 0, 0
	reason := fmt.Sprintf("the hub dropped the connection %d times running as it was sent this message alone (%s)", strikesToSetAside, cause.Error())
	var moved bool
	err := u.store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) (err error) {
		moved, err = tx.SetAsideHub(id, reason)
		return err
	})
	switch {
	case err != nil:
		u.log.Error("could not set aside a message the hub refuses", "queue_id", id, "err", err)
	case moved:
		u.log.Warn("message set aside: the hub keeps refusing it; the rest of the queue goes on", "queue_id", id, "reason", reason)
	}
}

// refuseRetained answers a retained send from the hub: refused, with the
// reason, on its reply topic (through the queue, like every reply).
func (u *Uplink) refuseRetained(payload []byte) {
	_, p, _ := bridge.ParseSend(payload, "hub")
	replyTo := u.downTopic + "/reply"
	if p.ReplyTo != "" && store.CheckTopic(p.ReplyTo) == nil && !strings.HasPrefix(p.ReplyTo, "$") {
		replyTo = p.ReplyTo
	}
	const why = "a retained sms/send is refused: the hub would send it again on every reconnect (another SMS each time); " +
		"publish it without the retain flag, and clear the retained one (an empty retained message on the topic)"
	u.log.Warn("retained send from the hub refused", "id", p.ID)
	b, _ := json.Marshal(reply{ID: p.ID, Error: why})
	err := u.store.Update(context.Background(), func(tx *store.Tx) error {
		_, _, err := tx.EnqueueHubLimited(&store.HubMessage{Topic: replyTo, Payload: b, QoS: 1, Own: true}, u.opt.Limits)
		return err
	})
	if err != nil {
		u.log.Warn("reply to the hub not queued", "err", err)
	}
	u.Wake()
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

func (u *Uplink) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if u.opt.CAFile != "" {
		pem, err := os.ReadFile(u.opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("hub CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("hub CA %s: no PEM certificate in it", u.opt.CAFile)
		}
	}
	if u.opt.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(u.opt.CertFile, u.opt.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("hub client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// publishStats tells the hub the queue's counters when what the limits
// cost changed, and once a minute.
func (u *Uplink) publishStats(client paho.Client, last store.HubStats, at time.Time) (store.HubStats, time.Time) {
	if u.statsTopic == "" {
		return last, at
	}
	var st store.HubStats
	if err := u.store.View(context.Background(), func(tx *store.Tx) (err error) { st, err = tx.HubQueueStats(); return }); err != nil {
		return last, at
	}
	changed := st.Dropped != last.Dropped || st.Expired != last.Expired || st.Refused != last.Refused || st.SetAside != last.SetAside ||
		st.OverBound != last.OverBound || st.Requeued != last.Requeued
	if !changed && time.Since(at) < time.Minute {
		return last, at
	}
	b, _ := json.Marshal(st)
	client.Publish(u.statsTopic, 1, true, b)
	return st, time.Now()
}

// expire drops what waited longer than MaxAge.
func (u *Uplink) expire(ctx context.Context) {
	if u.opt.MaxAge <= 0 {
		return
	}
	var n int64
	err := u.store.Update(ctx, func(tx *store.Tx) (err error) {
		n, err = tx.ExpireHub(tx.Now().Add(-u.opt.MaxAge))
		return err
	})
	if err != nil {
		u.log.Warn("expire hub queue", "err", err)
	} else if n > 0 {
		u.log.Warn("messages for the hub waited longer than the age limit and were dropped", "count", n, "max_age", u.opt.MaxAge)
	}
}
