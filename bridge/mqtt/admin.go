package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// AdminReply is what admin/<op>/reply carries for the contact and group
// operations.
type AdminReply struct {
	OK       bool     `json:"ok"`
	Result   any      `json:"result,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// adminFamily is one family of the router's operations served on
// admin/<op>: which ops it has, how one runs (the caller is in ctx), and
// the answer to a request refused for bad input, or nil when err is not
// such a refusal (a failure to commit).
type adminFamily struct {
	ops     []string
	run     func(c *Connector, ctx context.Context, op string, payload []byte) (any, error)
	refused func(err error) any
}

// refusal is err's text without the ErrInvalid prefix.
func refusal(err error) string {
	return strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")
}

// adminFamilies are the operations on admin/<op>: opt-outs and topics,
// contacts and groups, bans and the audit log, quotas.
var adminFamilies = []adminFamily{
	{
		ops: bridge.PeopleOps,
		run: func(c *Connector, ctx context.Context, op string, payload []byte) (any, error) {
			return c.router.People(ctx, op, payload, "mqtt")
		},
		refused: func(err error) any {
			if !errors.Is(err, bridge.ErrInvalid) {
				return nil
			}
			return bridge.PeopleAnswer{Error: refusal(err)}
		},
	},
	{
		ops: bridge.ContactOps,
		run: func(c *Connector, ctx context.Context, op string, payload []byte) (any, error) {
			if len(payload) > MaxSendRequest {
				return nil, errors.New("the request is too large")
			}
			r, w, err := c.router.ContactOp(ctx, op, payload)
			return AdminReply{OK: true, Result: r, Warnings: w}, err
		},
		refused: func(err error) any {
			if err.Error() == "the request is too large" || errors.Is(err, bridge.ErrInvalid) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) {
				return AdminReply{Error: err.Error()}
			}
			return nil
		},
	},
	{
		ops: bridge.BanOps,
		run: func(c *Connector, ctx context.Context, op string, payload []byte) (any, error) {
			return c.router.Bans(ctx, op, payload, "mqtt", clientWho(mochiClient(ctx)))
		},
		refused: func(err error) any {
			if !errors.Is(err, bridge.ErrInvalid) {
				return nil
			}
			return bridge.BanAnswer{Error: refusal(err)}
		},
	},
	{
		ops: []string{"quota"},
		run: func(c *Connector, ctx context.Context, op string, payload []byte) (any, error) {
			return c.router.QuotaOp(ctx, payload, clientWho(mochiClient(ctx)))
		},
		refused: func(err error) any {
			if !errors.Is(err, bridge.ErrInvalid) {
				return nil
			}
			return bridge.QuotaAnswer{Error: refusal(err)}
		},
	},
}

// The operations' answers are Outpost's own output: no client may
// publish on admin/<op>/reply.
func init() {
	for _, f := range adminFamilies {
		for _, op := range f.ops {
			ownTopics = append(ownTopics, "admin/"+op+"/reply")
		}
	}
}

// adminHook serves adminFamilies: JSON in on admin/<op>, the answer on
// admin/<op>/reply. A change is committed before the PUBACK; one that
// cannot be committed gets no PUBACK (the client is disconnected and asks
// again). Only clients the ACL lets publish on admin/<op> get here (the
// broker checks it before any hook); other admin/ topics pass on.
type adminHook struct {
	mochi.HookBase
	c *Connector
}

func (h *adminHook) ID() string { return "outpost-admin" }

func (h *adminHook) Provides(b byte) bool { return b == mochi.OnPublish }

type clientKey struct{}

// mochiClient is the client a request of ctx came from.
func mochiClient(ctx context.Context) *mochi.Client {
	cl, _ := ctx.Value(clientKey{}).(*mochi.Client)
	return cl
}

func (h *adminHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.c
	op, ok := strings.CutPrefix(pk.TopicName, c.Topic("admin/"))
	if !ok || cl.Net.Inline {
		return pk, nil
	}
	i := slices.IndexFunc(adminFamilies, func(f adminFamily) bool { return slices.Contains(f.ops, op) })
	complete := c.inOrder(cl)
	if i < 0 {
		// An unknown operation is answered (not passed on to
		// subscribers as if it were one): its reply topic is reserved
		// like the others' (auth.go), and only a client the ACL lets
		// publish on admin/<op> gets here.
		c.log.Info("refused admin/"+op, "client", cl.ID, "err", "unknown operation")
		complete(func() {
			c.ack(cl, pk)
			b, _ := json.Marshal(AdminReply{Error: fmt.Sprintf("unknown operation %q, known: %s", op, strings.Join(knownAdminOps(), ", "))})
			if err := c.server.Publish(c.Topic("admin/"+op+"/reply"), b, false, 1); err != nil {
				c.log.Warn("publish reply", "err", err)
			}
		})
		return answeredByPipe(pk), nil
	}
	f := adminFamilies[i]
	payload := append([]byte(nil), pk.Payload...)
	go func() {
		ctx := context.WithValue(bridge.WithCaller(context.Background(), "mqtt", clientWho(cl)), clientKey{}, cl)
		ans, err := runAdmin(c, f, ctx, op, payload)
		if errors.Is(err, errAdminPanic) {
			ans = AdminReply{Error: err.Error()}
		} else if err != nil {
			if ans = f.refused(err); ans == nil {
				c.log.Error("admin/"+op+" not stored; not acknowledged", "client", cl.ID, "err", err)
				complete(func() { cl.Stop(err) })
				return
			}
			c.log.Info("refused admin/"+op, "client", cl.ID, "err", err)
		}
		complete(func() {
			c.ack(cl, pk)
			b, _ := json.Marshal(ans)
			if err := c.server.Publish(c.Topic("admin/"+op+"/reply"), b, false, 1); err != nil {
				c.log.Warn("publish reply", "err", err)
			}
		})
	}()
	return answeredByPipe(pk), nil
}

// errAdminPanic marks an operation that panicked: a bug, answered as an
// error (the transaction it was in, if any, is rolled back by the store).
var errAdminPanic = errors.New("internal error")

// runAdmin runs one operation of family f; a panic in it becomes an
// error (logged with its stack) and the broker goes on.
func runAdmin(c *Connector, f adminFamily, ctx context.Context, op string, payload []byte) (ans any, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("admin/"+op+" panicked; answered as an error", "client", mochiClient(ctx).ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ans, err = nil, fmt.Errorf("%w: admin/%s failed (%v); the daemon's log has the details", errAdminPanic, op, p)
		}
	}()
	return f.run(c, ctx, op, payload)
}

// knownAdminOps are the operations admin/<op> serves, sorted.
func knownAdminOps() []string {
	var ops []string
	for _, f := range adminFamilies {
		ops = append(ops, f.ops...)
	}
	slices.Sort(ops)
	return ops
}

// clientWho is an MQTT client as the audit log names it: its user and
// client id ("mqtt:alice/dev1"), or its client id alone.
func clientWho(cl *mochi.Client) string {
	if u := string(cl.Properties.Username); u != "" {
		return "mqtt:" + u + "/" + cl.ID
	}
	return "mqtt:" + cl.ID
}
