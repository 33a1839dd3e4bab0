package redistest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// failoverNodeTimeout is the cluster-node-timeout of StartReplicatedCluster: a master
// silent that long is failed over. Redis's default, 15 s, would make a failover test
// wait most of a minute.
const failoverNodeTimeout = time.Second

// noSyncDelay has a master send a replica its first copy at once, not five seconds later
// (repl-diskless-sync-delay) in case more replicas come.
var noSyncDelay = []string{"--repl-diskless-sync-delay", "0"}

// StartReplicatedCluster is StartCluster with a replica for each master, in sync when it
// returns, and a cluster-node-timeout of one second, so that a test can kill a master
// (Server.Stop) and see its replica promoted (AwaitFailover) within seconds.
func StartReplicatedCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	c := startCluster(t, masters, 1, failoverNodeTimeout)
	// redis-cli has made the replicas by the time every node is ok; each node's own line
	// of CLUSTER NODES says whose replica it is.
	byID := map[string]*Server{}
	masterID := map[*Server]string{}
	for _, s := range c.Servers {
		nodes, err := clusterNodes(s.Addr)
		if err != nil {
			t.Fatalf("redistest: CLUSTER NODES on %s: %v", s.Addr, err)
		}
		for _, n := range nodes {
			if n.is("myself") {
				byID[n.id] = s
				if n.is("slave") {
					masterID[s] = n.master
				}
			}
		}
	}
	c.masterOf = map[*Server]*Server{}
	for r, id := range masterID {
		if byID[id] == nil {
			t.Fatalf("redistest: replica %s follows %s, not a node of this cluster", r.Addr, id)
		}
		c.masterOf[r] = byID[id]
	}
	if len(c.masterOf) != masters {
		t.Fatalf("redistest: %d replicas after redis-cli --cluster create, want %d", len(c.masterOf), masters)
	}
	c.AwaitReplicated(t)
	return c
}

// AwaitReplicated waits until every replica holds what its master had written when it
// was called, so that a failover loses none of it.
func (c *Cluster) AwaitReplicated(t testing.TB) {
	t.Helper()
	for r, m := range c.masterOf {
		if err := awaitReplicated(m, r); err != nil {
			t.Fatalf("redistest: replica %s of %s: %v", r.Addr, m.Addr, err)
		}
	}
}

// MasterOf is the master that serves key now.
func (c *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	for _, s := range c.Servers {
		if !s.running() {
			continue
		}
		reply, err := Do(s.Addr, "CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatalf("redistest: CLUSTER KEYSLOT on %s: %v", s.Addr, err)
		}
		slot, err := strconv.Atoi(reply)
		if err != nil {
			t.Fatalf("redistest: CLUSTER KEYSLOT answered %q", reply)
		}
		nodes, err := clusterNodes(s.Addr)
		if err != nil {
			t.Fatalf("redistest: CLUSTER NODES on %s: %v", s.Addr, err)
		}
		for _, n := range nodes {
			if n.is("master") && !n.is("fail") && n.serves(slot) {
				if m := c.server(n.addr); m != nil {
					return m
				}
			}
		}
		t.Fatalf("redistest: no master serves slot %d", slot)
	}
	t.Fatal("redistest: no node of the cluster is running")
	return nil
}

// AwaitFailover waits, after killed (a master) was stopped, until its replica is master
// and every other node reports cluster_state:ok and knows the replica as a master, and
// returns the replica. It has no replica of its own from then on.
func (c *Cluster) AwaitFailover(t testing.TB, killed *Server) *Server {
	t.Helper()
	var promoted *Server
	err := poll(failoverTimeout, 20*time.Millisecond, nil, func() error {
		promoted = nil
		for r, m := range c.masterOf {
			if m != killed {
				continue
			}
			if role, err := infoField(r.Addr, "replication", "role"); err == nil && role == "master" {
				promoted = r
			}
		}
		if promoted == nil {
			return fmt.Errorf("no replica of %s has become master", killed.Addr)
		}
		for _, s := range c.Servers {
			if s == killed || !s.running() {
				continue
			}
			if err := clusterStateOK(s.Addr); err != nil {
				return fmt.Errorf("node %s: %w", s.Addr, err)
			}
			nodes, err := clusterNodes(s.Addr)
			if err != nil {
				return err
			}
			if i := slices.IndexFunc(nodes, func(n clusterNode) bool { return n.addr == promoted.Addr }); i < 0 || !nodes[i].is("master") {
				return fmt.Errorf("node %s does not know %s as a master yet", s.Addr, promoted.Addr)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: no failover of %s within %v: %v", killed.Addr, failoverTimeout, err)
	}
	delete(c.masterOf, promoted)
	return promoted
}

func (c *Cluster) server(addr string) *Server {
	for _, s := range c.Servers {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, master string
	flags            []string
	slots            []string // "0-5460", "5461"; "[…]" for a slot being migrated
}

func clusterNodes(addr string) ([]clusterNode, error) {
	reply, err := Do(addr, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	var nodes []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(reply), "\n") {
		// <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot>…
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES line %q", line)
		}
		a, _, _ := strings.Cut(f[1], "@")
		nodes = append(nodes, clusterNode{id: f[0], addr: a, flags: strings.Split(f[2], ","), master: f[3], slots: f[8:]})
	}
	return nodes, nil
}

func (n *clusterNode) is(flag string) bool { return slices.Contains(n.flags, flag) }

func (n *clusterNode) serves(slot int) bool {
	for _, r := range n.slots {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && l <= slot && slot <= h {
			return true
		}
	}
	return false
}

// awaitReplicated waits until replica has applied everything master had written when
// it was called: the replication offset master reports then. (WAIT would have to run on
// the writer's own connection.)
func awaitReplicated(master, replica *Server) error {
	v, err := infoField(master.Addr, "replication", "master_repl_offset")
	if err != nil {
		return err
	}
	want, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("master_repl_offset %q", v)
	}
	// A replica's sync has no event a client can wait on.
	return poll(startTimeout, 5*time.Millisecond, nil, func() error {
		if link, err := infoField(replica.Addr, "replication", "master_link_status"); err != nil || link != "up" {
			return fmt.Errorf("link to the master %q (%v)", link, err)
		}
		v, err := infoField(replica.Addr, "replication", "slave_repl_offset")
		if err != nil {
			return err
		}
		if got, err := strconv.ParseInt(v, 10, 64); err != nil || got < want {
			return fmt.Errorf("at offset %s of the master's %d", v, want)
		}
		return nil
	})
}

// infoField is one field of INFO section on addr.
func infoField(addr, section, field string) (string, error) {
	info, err := Do(addr, "INFO", section)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO %s on %s has no %s", section, addr, field)
}
