package redistest

import (
	"strings"
	"testing"
	"time"
)

func TestServerStopRestart(t *testing.T) {
	s := Start(t)
	if strings.HasSuffix(s.Addr, ":6379") {
		t.Fatalf("Start used the default port: %s", s.Addr)
	}
	if _, err := Do(s.Addr, "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Stop()
	if _, err := Do(s.Addr, "PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // idempotent
	addr := s.Addr
	s.Restart(t)
	if s.Addr != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr)
	}
	if got, err := Do(s.Addr, "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Restart = %q, %v", got, err)
	}
	// Nothing is persisted: a restart is an empty Redis, as the outage tests expect.
	if got, err := Do(s.Addr, "EXISTS", "k"); err != nil || got != "0" {
		t.Fatalf("EXISTS k after Restart = %q, %v; want 0", got, err)
	}
}

func TestDoErrorReply(t *testing.T) {
	s := Start(t)
	if _, err := Do(s.Addr, "NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("Do(NOSUCHCOMMAND) err = %v, want the server's error", err)
	}
}

func TestStartCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs) != 3 {
		t.Fatalf("Addrs = %v, want 3", c.Addrs)
	}
	for _, a := range c.Addrs {
		info, err := Do(a, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_assigned:16384") {
			t.Fatalf("CLUSTER INFO on %s: %v\n%s", a, err, info)
		}
	}
}

func TestMonitor(t *testing.T) {
	s := Start(t)
	mon := Monitor(t, s.Addr)
	if _, err := Do(s.Addr, "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	// MONITOR answered +OK before Monitor returned, so the SET is on the stream.
	select {
	case line := <-mon:
		if !strings.HasSuffix(line, `] "SET" "k" "v"`) || strings.HasPrefix(line, "+") {
			t.Fatalf("MONITOR line %q, want the SET", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("MONITOR did not report the SET")
	}
}

func TestDoArray(t *testing.T) {
	s := Start(t)
	got, err := Do(s.Addr, "CONFIG", "GET", "port")
	if _, port, _ := strings.Cut(s.Addr, ":"); err != nil || got != "port\n"+port {
		t.Fatalf("CONFIG GET port = %q, %v; want the pair, one a line", got, err)
	}
}

// TestStartSentinel: what was replicated before the master is killed is on the replica
// the Sentinels promote, what LoseWrites wrote is not, and the replica takes writes.
func TestStartSentinel(t *testing.T) {
	s := StartSentinel(t)
	if len(s.Addrs) != 3 {
		t.Fatalf("Addrs = %v, want 3 Sentinels", s.Addrs)
	}
	if got, err := Do(s.Addrs[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name); err != nil || strings.ReplaceAll(got, "\n", ":") != s.Master.Addr {
		t.Fatalf("master by name = %q, %v; want %s", got, err, s.Master.Addr)
	}
	if _, err := Do(s.Master.Addr, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.AwaitReplicated(t)
	s.LoseWrites(t, func() {
		if _, err := Do(s.Master.Addr, "SET", "k", "lost"); err != nil {
			t.Fatal(err)
		}
	})
	s.AwaitFailover(t)
	if got, err := Do(s.Replica.Addr, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k on the promoted replica = %q, %v", got, err)
	}
	if _, err := Do(s.Replica.Addr, "SET", "k", "w"); err != nil {
		t.Fatalf("SET on the promoted replica: %v", err)
	}
}

// TestStartReplicatedCluster: a killed master's replica takes over its slots and what it
// held.
func TestStartReplicatedCluster(t *testing.T) {
	c := StartReplicatedCluster(t, 3)
	if len(c.Servers) != 6 {
		t.Fatalf("%d nodes, want 3 masters and 3 replicas", len(c.Servers))
	}
	m := c.MasterOf(t, "k")
	if _, err := Do(m.Addr, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.AwaitReplicated(t)
	m.Stop()
	r := c.AwaitFailover(t, m)
	if got := c.MasterOf(t, "k"); got != r {
		t.Fatalf("after the failover k is served by %v, want the promoted replica %s", got, r.Addr)
	}
	if got, err := Do(r.Addr, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k on the promoted replica = %q, %v", got, err)
	}
}
