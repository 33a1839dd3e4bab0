package consent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/otel/trace"
)

// RedisStore defaults.
const (
	DefaultRedisPrefix       = "consentgate:"
	DefaultRedisTimeout      = 5 * time.Millisecond
	DefaultRedisWriteTimeout = 250 * time.Millisecond
	// DefaultRedisMinIdleConns keeps connections open for the lookups' batches and a
	// write or health check beside them, from the start: a lookup that has to dial
	// (TCP, HELLO, CLIENT SETNAME) does not fit a 5 ms budget on a busy instance.
	DefaultRedisMinIdleConns = lookupBatches + 2
)

// clusterStateReloadInterval is how old a Redis Cluster's slot map may get before a
// command has it reloaded (in the background, one CLUSTER SLOTS). go-redis reloads on a
// MOVED reply, which a dead master never sends: with its default of a minute, the keys of
// a master that failed over would be sent to the dead address, and decided fail closed,
// for up to a minute after the replica was promoted.
const clusterStateReloadInterval = time.Second

// RedisOptions configures a RedisStore. Zero values take the defaults.
type RedisOptions struct {
	// Addrs: one address is a single node; several, or Cluster, a Redis Cluster (seed
	// nodes); with MasterName, Sentinel addresses.
	Addrs              []string
	Username, Password string
	DB                 int // single node and Sentinel only
	TLS                bool
	Cluster            bool   // cluster mode with a single (configuration endpoint) address
	MasterName         string // Sentinel: the monitored master's name

	// Timeout is the budget of a Get, the call on the hit path: past it the hit is decided
	// fail closed rather than waiting. Default DefaultRedisTimeout.
	Timeout time.Duration
	// WriteTimeout is the budget of the other calls (Put, Delete, Erase, History, Ping),
	// which serve the consent and admin APIs, not hits: a consent write should not fail
	// on a latency blip that a hit can shrug off. Default DefaultRedisWriteTimeout, and
	// never less than Timeout.
	WriteTimeout time.Duration

	// PoolSize is the connections per node (default: go-redis's, 10 per CPU);
	// MinIdleConns those kept open, dialled at start (default DefaultRedisMinIdleConns,
	// at most PoolSize).
	PoolSize, MinIdleConns int

	// Prefix starts every key and the invalidation channel; default DefaultRedisPrefix.
	// It may not contain '{' or '}', which would move the cluster hash tag.
	Prefix string
	// ReceiptsMaxLen caps the receipts kept per ID (approximately: XADD MAXLEN ~);
	// default DefaultReceiptsMaxLen.
	ReceiptsMaxLen int64
	// ReceiptsTTL is the receipts' lifetime after the last append; default
	// DefaultReceiptsTTL.
	ReceiptsTTL time.Duration
	// ReceiptsMaxBytes bounds one ID's receipts by ReceiptSize (exactly, the oldest
	// going first, the newest always kept); default DefaultReceiptsMaxBytes.
	ReceiptsMaxBytes int64

	// OnPublishError, if set, is told when an invalidation could not be published after
	// a write was saved. The write still succeeds; other instances serve their cached copy
	// until the cache TTL ends it. It must not block.
	OnPublishError func(error)
}

// RedisStore is the Store shared by every instance: states in Redis hashes, receipts in
// Redis streams, and an invalidation channel that keeps the instances' caches honest.
// REDIS.md documents the key schema, for sites whose backend writes consent directly.
type RedisStore struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil unless a Redis Cluster
	// lookups batches the reads of states (Get, GetFresh): see get.
	lookups *redis.AutoPipeliner

	prefix, channel string
	timeout         time.Duration
	writeTimeout    time.Duration
	maxLen          int64
	maxBytes        int64
	receiptsTTL     time.Duration
	onPublishError  func(error)
	healthEvery     time.Duration // subscribeHealthEvery; tests shorten it
	epoch           Epoch         // the dataset epoch SyncEpoch last read (epoch.go)

	done      chan struct{} // closed by Close; stops Subscribe
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*RedisStore)(nil)

// Client is the underlying go-redis client, for instrumentation (OpenTelemetry spans).
func (r *RedisStore) Client() redis.UniversalClient { return r.client }

// NewRedisStore builds a client from o. It does not wait for Redis: the idle connections
// (MinIdleConns) are dialled in the background, and Redis being down at start must not
// stop the proxy, which serves fail closed until Redis is back. It fails only for
// options that cannot work.
func NewRedisStore(o RedisOptions) (*RedisStore, error) {
	if err := checkRedisOptions(&o); err != nil {
		return nil, err
	}
	uo := &redis.UniversalOptions{
		Addrs:      o.Addrs,
		ClientName: "consentgate",
		Username:   o.Username,
		Password:   o.Password,
		DB:         o.DB,
		MasterName: o.MasterName,
		// Deadlines come from the contexts, each call its own budget.
		ContextTimeoutEnabled: true,
		// A retry inside a 5 ms budget only eats the budget; the one retry left covers a
		// pooled connection that died since its last use (a Redis restart).
		MaxRetries: 1,
		// No dial retries either: a refused connection is answered at once, fail closed,
		// and the pool's own probe notices when Redis is back.
		DialerRetries: 1,
		DialTimeout:   2 * time.Second,
		// The socket deadlines of a call that has none of its own, or a later one: the
		// lookups' batches (see hgetall), which a stalled Redis would otherwise hold for
		// go-redis's default of 5 s.
		ReadTimeout:  o.WriteTimeout,
		WriteTimeout: o.WriteTimeout,
		PoolSize:     o.PoolSize,
		MinIdleConns: o.MinIdleConns,
		// Pipelines (the lookups' batches, the writes' transactions) share the main
		// pool, which MinIdleConns keeps warm: the separate pipeline pool never dials
		// ahead, so a burst of cold lookups would meet it empty.
		PipelinePoolSize: -1,
		// Maintenance notifications are a Redis Cloud feature; asking a self-hosted Redis
		// for them costs a failed command on every new connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if o.TLS {
		uo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s := &RedisStore{
		prefix:         o.Prefix,
		channel:        o.Prefix + "invalidate",
		timeout:        o.Timeout,
		writeTimeout:   o.WriteTimeout,
		maxLen:         o.ReceiptsMaxLen,
		maxBytes:       o.ReceiptsMaxBytes,
		receiptsTTL:    o.ReceiptsTTL,
		onPublishError: o.OnPublishError,
		healthEvery:    subscribeHealthEvery,
		done:           make(chan struct{}),
	}
	switch {
	case o.MasterName != "":
		s.client = redis.NewFailoverClient(uo.Failover())
	case o.Cluster || len(o.Addrs) > 1:
		co := uo.Cluster()
		co.ClusterStateReloadInterval = clusterStateReloadInterval
		s.cluster = redis.NewClusterClient(co)
		s.client = s.cluster
	default:
		s.client = redis.NewClient(uo.Simple())
	}
	ap, err := s.client.AsyncAutoPipelineWithOptions(&redis.AutoPipelineOptions{
		// Lookups are independent reads: their order does not matter.
		Unordered:            true,
		MaxConcurrentBatches: lookupBatches,
		// Past this many lookups waiting, a lookup fails at once (fail closed) rather
		// than queueing behind a Redis that cannot keep up.
		MaxQueuedCommands: maxQueuedLookups,
	})
	if err != nil {
		_ = s.client.Close()
		return nil, fmt.Errorf("consent: redis lookups: %w", err)
	}
	s.lookups = ap
	return s, nil
}

const (
	// lookupBatches is how many batches of lookups may be with Redis at once: one
	// gives the deepest batches, a second keeps a slow one from holding up the rest.
	lookupBatches = 2
	// maxQueuedLookups bounds the lookups waiting for Redis (see get).
	maxQueuedLookups = 10_000
)

func checkRedisOptions(o *RedisOptions) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("consent: redis options: "+format, args...))
	}
	if len(o.Addrs) == 0 {
		bad("no address: give one host:port (single node), several (cluster) or the Sentinels'")
	}
	for _, a := range o.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("address %q is not host:port: %v", a, err)
		}
	}
	if o.MasterName != "" && o.Cluster {
		bad("MasterName (Sentinel) and Cluster exclude each other")
	}
	if o.DB != 0 && (o.Cluster || o.MasterName == "" && len(o.Addrs) > 1) {
		bad("DB %d: a Redis Cluster has only database 0", o.DB)
	}
	if o.DB < 0 {
		bad("DB must not be negative, got %d", o.DB)
	}
	if o.Timeout < 0 || o.WriteTimeout < 0 {
		bad("timeouts must not be negative, got Timeout %v, WriteTimeout %v", o.Timeout, o.WriteTimeout)
	}
	if o.PoolSize < 0 || o.MinIdleConns < 0 {
		bad("pool sizes must not be negative, got PoolSize %d, MinIdleConns %d", o.PoolSize, o.MinIdleConns)
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		bad("prefix %q contains '{' or '}': the consent ID is the cluster hash tag, and the prefix must not move it", o.Prefix)
	}
	if o.ReceiptsMaxLen < 0 || o.ReceiptsTTL < 0 || o.ReceiptsMaxBytes < 0 {
		bad("receipts caps and TTL must not be negative, got %d, %d bytes and %v", o.ReceiptsMaxLen, o.ReceiptsMaxBytes, o.ReceiptsTTL)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultRedisTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultRedisWriteTimeout
	}
	if o.MinIdleConns == 0 {
		o.MinIdleConns = DefaultRedisMinIdleConns
		if o.PoolSize > 0 {
			o.MinIdleConns = min(o.MinIdleConns, o.PoolSize)
		}
	}
	o.WriteTimeout = max(o.WriteTimeout, o.Timeout)
	if o.ReceiptsMaxLen == 0 {
		o.ReceiptsMaxLen = DefaultReceiptsMaxLen
	}
	if o.ReceiptsTTL == 0 {
		o.ReceiptsTTL = DefaultReceiptsTTL
	}
	if o.ReceiptsMaxBytes == 0 {
		o.ReceiptsMaxBytes = DefaultReceiptsMaxBytes
	}
	return errors.Join(errs...)
}

// SetRedisLogger sends the Redis client's own messages (dial failures, reconnects) to l
// at warning level, instead of the plain lines it writes to stderr by default, so they
// join the process's structured logs. The client's logger is process-wide: call this
// once, at start. Its messages name Redis addresses, never keys or consent IDs.
func SetRedisLogger(l *slog.Logger) {
	redis.SetLogger(redisLogger{l})
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis-client")
}

// errBadID keeps IDs that would break the key schema out of Redis. Consent IDs are
// checked by the caller; this is the store's own line of defence, and says nothing of
// the ID itself.
var errBadID = errors.New("consent: redis: consent ID is empty or contains '{' or '}'")

func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "{}") {
		return errBadID
	}
	return nil
}

// stateKey and receiptsKey wrap the ID in a hash tag, so a Redis Cluster puts both keys
// of one ID in one slot and a transaction may span them.
func (r *RedisStore) stateKey(id string) string    { return r.prefix + "{" + id + "}:state" }
func (r *RedisStore) receiptsKey(id string) string { return r.prefix + "{" + id + "}:receipts" }

// Get reads id's state within the Timeout budget. A state Redis holds but this version
// cannot read is an error, which the hit path turns into fail closed.
func (r *RedisStore) Get(ctx context.Context, id string) (State, bool, error) {
	return r.get(ctx, id, r.timeout)
}

// GetFresh reads id's state within the WriteTimeout budget.
func (r *RedisStore) GetFresh(ctx context.Context, id string) (State, bool, error) {
	return r.get(ctx, id, r.writeTimeout)
}

func (r *RedisStore) get(ctx context.Context, id string, budget time.Duration) (State, bool, error) {
	if err := checkID(id); err != nil {
		return State{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	m, err := r.hgetall(ctx, r.stateKey(id))
	if err != nil {
		return State{}, false, fmt.Errorf("consent: redis get: %w", err)
	}
	if len(m) == 0 {
		return State{}, false, nil
	}
	st, err := parseState(m)
	if err != nil {
		return State{}, false, fmt.Errorf("consent: redis get: %w", err)
	}
	return st, true, nil
}

// hgetall reads a state's hash. Lookups go through the client's autopipeliner: those
// that arrive while a batch is with Redis go together in the next, one round trip for
// all (an instance meets its visitors in bursts: a deploy, a cache cleared after an
// outage). A batch runs on the pipeliner's own deadline (WriteTimeout), not on any one
// lookup's: a lookup past its budget stops waiting (its hit is decided fail closed) but
// the connection is not torn down, so a slow moment does not become a storm of
// reconnections. A traced lookup (a sampled hit) is sent on its own instead, under its
// own deadline, so that its span is the hit's child, as a batch's cannot be.
func (r *RedisStore) hgetall(ctx context.Context, key string) (map[string]string, error) {
	if trace.SpanContextFromContext(ctx).IsSampled() {
		return r.client.HGetAll(ctx, key).Result()
	}
	cmd := redis.NewMapStringStringCmd(ctx, "hgetall", key)
	if err := r.lookups.Submit(ctx, cmd).WaitContext(ctx); err != nil {
		return nil, err
	}
	return cmd.Result()
}

// trimReceiptsScript drops the oldest receipts of a stream (KEYS[1]) until what the rest
// hold, field names and values (ReceiptSize), is at most ARGV[1] bytes; the newest entry
// always stays. XADD's MAXLEN bounds the count, and this the bytes, which a count alone
// does not: one TC string makes a receipt kilobytes. It runs inside the write's
// MULTI/EXEC, so the trail is never seen over its bound, and reads at most the bounded
// stream. XDEL rather than XTRIM MINID, which needs Redis 6.2.
const trimReceiptsScript = `
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-')
local limit, total = tonumber(ARGV[1]), 0
for i, e in ipairs(entries) do
  for _, f in ipairs(e[2]) do total = total + #f end
  if total > limit and i > 1 then
    for j = i, #entries do redis.call('XDEL', KEYS[1], entries[j][1]) end
    return #entries - i + 1
  end
end
return 0`

// appendReceipt queues the receipt append of a write transaction.
func (r *RedisStore) appendReceipt(ctx context.Context, p redis.Pipeliner, key string, rc *Receipt) {
	p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: r.maxLen, Approx: true, Values: receiptFields(rc)})
	p.Eval(ctx, trimReceiptsScript, []string{key}, r.maxBytes)
	p.PExpire(ctx, key, r.receiptsTTL)
}

// Put replaces id's state and appends the receipt in one MULTI/EXEC, then publishes the
// invalidation. The publish is outside the transaction and its failure does not fail
// the write, which is saved: see OnPublishError.
func (r *RedisStore) Put(ctx context.Context, id string, st State, ttl time.Duration, rc Receipt) error {
	if ttl <= 0 {
		return fmt.Errorf("consent: redis put: ttl must be positive, got %v", ttl)
	}
	if err := checkID(id); err != nil {
		return err
	}
	rc, err := consentReceipt(rc, &st, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	sk, rk := r.stateKey(id), r.receiptsKey(id)
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// DEL first: a purpose that became unset must not survive from the old hash.
		p.Del(ctx, sk)
		p.HSet(ctx, sk, stateFields(&st)...)
		p.PExpire(ctx, sk, ttl)
		r.appendReceipt(ctx, p, rk, &rc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("consent: redis put: %w", err)
	}
	r.publish(ctx, id)
	return nil
}

// Delete removes id's state and appends the withdrawal in one MULTI/EXEC, then publishes.
func (r *RedisStore) Delete(ctx context.Context, id string, rc Receipt) (bool, error) {
	if err := checkID(id); err != nil {
		return false, err
	}
	rc, err := withdrawReceipt(rc, time.Now())
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	var del *redis.IntCmd
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, r.stateKey(id))
		r.appendReceipt(ctx, p, r.receiptsKey(id), &rc)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("consent: redis delete: %w", err)
	}
	r.publish(ctx, id)
	return del.Val() > 0, nil
}

// Erase deletes both keys of id (one DEL: same slot, atomic), then publishes.
func (r *RedisStore) Erase(ctx context.Context, id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	n, err := r.client.Del(ctx, r.stateKey(id), r.receiptsKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("consent: redis erase: %w", err)
	}
	r.publish(ctx, id)
	return n > 0, nil
}

func (r *RedisStore) publish(ctx context.Context, id string) {
	if err := r.client.Publish(ctx, r.channel, id).Err(); err != nil && r.onPublishError != nil {
		r.onPublishError(fmt.Errorf("consent: redis publish invalidation: %w", err))
	}
}

// History reads id's receipts, oldest first. A receipt this version cannot read is an
// error rather than a gap: an audit trail with silent holes proves nothing.
func (r *RedisStore) History(ctx context.Context, id string) ([]Receipt, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	msgs, err := r.client.XRange(ctx, r.receiptsKey(id), "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("consent: redis history: %w", err)
	}
	out := make([]Receipt, 0, len(msgs))
	for _, msg := range msgs {
		rc, err := parseReceipt(msg.Values)
		if err != nil {
			return nil, fmt.Errorf("consent: redis history: receipt %s: %w", msg.ID, err)
		}
		out = append(out, rc)
	}
	return out, nil
}

// SaltKey is the key of the anonymiser's salt for day, a UTC date "2006-01-02".
func (r *RedisStore) SaltKey(day string) string { return r.prefix + "salt:" + day }

// DaySalt returns the salt every instance uses on day (a UTC date "2006-01-02"): the one
// already stored, or candidate, stored now with SET NX so that the first instance to ask
// decides for all. ttl is how long the stored salt lives from now: until shortly after
// the day, after which no instance can read it again; a stored salt that would live
// longer is given ttl. A stored value that is not len(candidate) bytes is an error
// (something else wrote the key), not a salt.
func (r *RedisStore) DaySalt(ctx context.Context, day string, candidate []byte, ttl time.Duration) ([]byte, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("consent: redis day salt: ttl must be positive, got %v", ttl)
	}
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	key := r.SaltKey(day)
	err := r.client.SetArgs(ctx, key, candidate, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case err == nil:
		return candidate, nil
	case !errors.Is(err, redis.Nil): // redis.Nil: another instance stored it first
		return nil, fmt.Errorf("consent: redis day salt: %w", err)
	}
	// Whoever stored it, the salt must not outlive its day: a longer TTL, or none (a
	// manual SET, a restored dump), is cut to ttl. (PEXPIRE LT would do it in one call,
	// but needs Redis 7.0.)
	var get *redis.StringCmd
	var left *redis.DurationCmd
	if _, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		left = p.PTTL(ctx, key)
		return nil
	}); err != nil {
		// redis.Nil too: the key expired between the two calls, at the very end of its
		// life; the caller tries again.
		return nil, fmt.Errorf("consent: redis day salt: %w", err)
	}
	v, _ := get.Bytes()
	if d := left.Val(); d < 0 || d > ttl { // -1: no TTL (-2, gone, failed the GET)
		if err := r.client.PExpire(ctx, key, ttl).Err(); err != nil {
			return nil, fmt.Errorf("consent: redis day salt: bounding its TTL: %w", err)
		}
	}
	if len(v) != len(candidate) {
		return nil, fmt.Errorf("consent: redis day salt: %s holds %d bytes, not a %d-byte salt", key, len(v), len(candidate))
	}
	return v, nil
}

// Ping checks that Redis answers. On a cluster it pings every master, so that readiness
// reflects the whole keyspace and not just the node a PING happens to reach.
func (r *RedisStore) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	var err error
	if r.cluster != nil {
		err = r.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = r.client.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("consent: redis ping: %w", err)
	}
	return nil
}

// Close stops Subscribe and closes the client. It is idempotent.
func (r *RedisStore) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.closeErr = r.client.Close()
	})
	return r.closeErr
}
