package redistest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Sentinel is a master with one replica, watched by three Sentinels (quorum 2) that
// fail it over a second after it stops answering.
type Sentinel struct {
	Name      string   // the master's name, as the Sentinels know it
	Addrs     []string // the Sentinels': what a client is given
	Master    *Server  // the master at start: Stop kills it, as an outage would
	Replica   *Server  // its replica, the master after AwaitFailover
	Sentinels []*Server
}

// Sentinel timing: a master silent for sentinelDownAfter is failed over; a failover
// that stalls is given up and retried after 2 × sentinelFailoverTimeout. Redis's defaults
// (30 s and 3 min) would make a failover test wait minutes.
const (
	sentinelName            = "consentgate"
	sentinelDownAfter       = time.Second
	sentinelFailoverTimeout = 3 * time.Second
)

// StartSentinel starts the master, its replica and three Sentinels (redis-server
// --sentinel, each with a config file of its own, which it rewrites), and waits until
// the replica is in sync and every Sentinel knows the replica and the two other
// Sentinels. Everything is stopped when the test ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{Name: sentinelName, Master: start(t, "", noSyncDelay, false)}
	host, port, err := net.SplitHostPort(s.Master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Replica = start(t, "", []string{"--replicaof", host, port}, false)
	s.AwaitReplicated(t)
	conf := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 2\n"+
		"sentinel down-after-milliseconds %[1]s %[4]d\n"+
		"sentinel failover-timeout %[1]s %[5]d\n",
		s.Name, host, port, sentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds())
	for range 3 {
		file := filepath.Join(t.TempDir(), "sentinel.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		sen := start(t, file, []string{"--sentinel"}, false)
		s.Sentinels = append(s.Sentinels, sen)
		s.Addrs = append(s.Addrs, sen.Addr)
	}
	// Sentinels learn of replicas from the master's INFO, and of each other from hello
	// messages on the master, every few seconds: nothing announces when they have.
	want := "status=ok,address=" + s.Master.Addr + ",slaves=1,sentinels=3"
	err = poll(failoverTimeout, 20*time.Millisecond, nil, func() error {
		for _, sen := range s.Sentinels {
			info, err := Do(sen.Addr, "INFO", "sentinel")
			if err != nil {
				return err
			}
			if !strings.Contains(info, want) {
				return fmt.Errorf("sentinel %s: %s", sen.Addr, info)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: Sentinels not ready within %v: %v", failoverTimeout, err)
	}
	return s
}

// AwaitReplicated waits until the replica holds what the master had written when it was
// called, so that a failover loses none of it.
func (s *Sentinel) AwaitReplicated(t testing.TB) {
	t.Helper()
	if err := awaitReplicated(s.Master, s.Replica); err != nil {
		t.Fatalf("redistest: replica %s of %s: %v", s.Replica.Addr, s.Master.Addr, err)
	}
}

// AwaitFailover waits, after the master was stopped, until every Sentinel names the
// replica as the master (SENTINEL GET-MASTER-ADDR-BY-NAME) and the replica says it is
// one.
func (s *Sentinel) AwaitFailover(t testing.TB) {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.Replica.Addr)
	err := poll(failoverTimeout, 20*time.Millisecond, nil, func() error {
		for _, sen := range s.Sentinels {
			got, err := Do(sen.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name)
			if err != nil {
				return err
			}
			if got != host+"\n"+port {
				return fmt.Errorf("sentinel %s names %q as the master", sen.Addr, got)
			}
		}
		if role, err := infoField(s.Replica.Addr, "replication", "role"); err != nil || role != "master" {
			return fmt.Errorf("replica's role %q (%v)", role, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: no failover to %s within %v: %v", s.Replica.Addr, failoverTimeout, err)
	}
}

// LoseWrites runs write while the replica cannot receive it (frozen, its link cut), then
// kills the master before the replica is back: what write did, the master acknowledged,
// and the failover loses, as asynchronous replication loses a dying master's last writes.
func (s *Sentinel) LoseWrites(t testing.TB, write func()) {
	t.Helper()
	s.Replica.signal(t, freeze)
	defer s.Replica.signal(t, thaw)
	if _, err := Do(s.Master.Addr, "CLIENT", "KILL", "TYPE", "replica"); err != nil {
		t.Fatalf("redistest: cutting the replica's link: %v", err)
	}
	write()
	s.Master.Stop()
}
