//go:build linux

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sys/unix"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/internal/testshared"
	"orchmind/node"
	"orchmind/protocol/room"
	"orchmind/swarm"
	"orchmind/trainer/lora"
)

// The network lab: Linux network namespaces made by the test, wired like
// the internet. One "internet" namespace holds four public nodes
// (11.0.0.1-4: addresses that count as public to libp2p, on a bridge that
// leads nowhere outside this machine) that are the public DHT's bootstrap
// peers — speaking the default /ipfs/kad/1.0.0 protocol, given to every
// node with --public-bootstrap exactly as a user would — and relays. Each
// home namespace (192.168.k.2) sits behind its own router namespace
// (11.0.0.1k) that masquerades with nftables. Every node is a real
// `orchmind node` process with its own data folder.
//
// Four public nodes rather than three: libp2p trusts an observed (NAT)
// address only once four peers of distinct IPs report it
// (observedaddrs.ActivationThresh), and DCUtR hole punching needs that
// address on both sides.
const (
	labPublic = 4
	labPort   = "4747"
)

type labNS struct {
	name string
	pid  int
	cmd  *exec.Cmd
}

func (n *labNS) path() string { return fmt.Sprintf("/proc/%d/ns/net", n.pid) }

type lab struct {
	t     *testing.T
	work  string
	bin   string
	model string
	procs []*labProc
}

type labProc struct {
	name string
	ns   *labNS
	cmd  *exec.Cmd
	data string
	log  *bytes.Buffer
	done chan struct{}
}

// labPrereqs skips the test with a message when the lab cannot be built
// here: not root, no ip/nft/nsenter, no namespaces.
func labPrereqs(t *testing.T) {
	if testing.Short() {
		t.Skip("the network lab builds the binary and runs nine node processes")
	}
	if os.Geteuid() != 0 {
		t.Skip("the network lab needs root (network namespaces, veth pairs, nftables); CI runs `make test` as root")
	}
	for _, tool := range []string{"ip", "nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the network lab needs %s (apt-get install iproute2 nftables util-linux; `make lab-deps` installs them)", tool)
		}
	}
	if err := exec.Command("unshare", "--net", "true").Run(); err != nil {
		t.Skipf("network namespaces are not available here: %v", err)
	}
}

func (l *lab) newNS(name string) *labNS {
	l.t.Helper()
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		l.t.Skipf("cannot create a network namespace: %v", err)
	}
	ns := &labNS{name: name, pid: cmd.Process.Pid, cmd: cmd}
	l.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l.in(ns, "ip", "link", "set", "lo", "up")
	return ns
}

// in runs a command inside ns and fails the test when it fails.
func (l *lab) in(ns *labNS, args ...string) {
	l.t.Helper()
	l.inStdin(ns, "", args...)
}

func (l *lab) inStdin(ns *labNS, stdin string, args ...string) {
	l.t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns.path(), "--"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("lab: %s: %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
}

// nat is how a router maps its home's connections.
type nat struct {
	name string
	rule string // the nftables postrouting rule on the WAN side
}

var (
	// natPreserving is Linux masquerading as most home routers do it: the
	// source port kept when free (endpoint-independent mapping), inbound
	// packets let in only as replies to what went out (address- and
	// port-dependent filtering).
	natPreserving = nat{"masquerade (port-preserving, port-restricted cone)", `oifname "wan" masquerade`}
	// natSymmetric picks a random port for every new mapping (symmetric
	// NAT, as on some mobile and carrier-grade NATs): the address others
	// observe is good for them only, so hole punching cannot work.
	natSymmetric = nat{"masquerade fully-random (symmetric)", `oifname "wan" masquerade fully-random`}
)

// router wires home k behind a NAT router onto the internet bridge.
func (l *lab) router(inet *labNS, k int, n nat) (home *labNS) {
	r := l.newNS(fmt.Sprintf("router%d", k))
	home = l.newNS(fmt.Sprintf("home%d", k))
	wan, lan := fmt.Sprintf("11.0.0.%d", 10+k), fmt.Sprintf("192.168.%d", k)
	l.in(r, "ip", "link", "add", "wan", "type", "veth", "peer", "name", fmt.Sprintf("r%d", k), "netns", fmt.Sprint(inet.pid))
	l.in(inet, "ip", "link", "set", fmt.Sprintf("r%d", k), "master", "br0", "up")
	l.in(r, "ip", "addr", "add", wan+"/24", "dev", "wan")
	l.in(r, "ip", "link", "set", "wan", "up")
	l.in(r, "ip", "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", fmt.Sprint(home.pid))
	l.in(r, "ip", "addr", "add", lan+".1/24", "dev", "lan")
	l.in(r, "ip", "link", "set", "lan", "up")
	l.in(r, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	// NAT, and a home router's firewall: from the internet only replies
	// get in; anything else is dropped silently (no RST, no ICMP), to the
	// router as to the home.
	l.inStdin(r, `table ip nat {
 chain post { type nat hook postrouting priority 100; `+n.rule+`; }
}
table inet filter {
 chain input { type filter hook input priority 0; iifname "wan" ct state established,related accept; iifname "wan" drop; }
 chain forward { type filter hook forward priority 0; iifname "wan" ct state established,related accept; iifname "wan" drop; }
}
`, "nft", "-f", "-")
	l.in(home, "ip", "addr", "add", lan+".2/24", "dev", "eth0")
	l.in(home, "ip", "link", "set", "eth0", "up")
	l.in(home, "ip", "route", "add", "default", "via", lan+".1")
	return home
}

// start runs `orchmind node` in ns.
func (l *lab) start(name string, ns *labNS, data string, api string, args ...string) *labProc {
	l.t.Helper()
	full := append([]string{"--net=" + ns.path(), "--", l.bin, "node", "--model", l.model, "--data-dir", data,
		"--adapters-dir", filepath.Join(filepath.Dir(data), "adapters"), "--api", api, "--no-mdns", "--public-dht=on"}, args...)
	cmd := exec.Command("nsenter", full...)
	p := &labProc{name: name, ns: ns, cmd: cmd, data: data, log: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.Env = append(os.Environ(), "ORCHMIND_LOG=debug", "GOLOG_LOG_LEVEL=autorelay=debug,relay=debug,p2p-holepunch=debug,autonat=debug")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	_ = os.Remove(filepath.Join(data, node.APIFile))
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	l.procs = append(l.procs, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(data, node.APIFile)); err == nil {
			return p
		}
		select {
		case <-p.done:
			l.t.Fatalf("lab: node %s exited at start:\n%s", name, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("lab: node %s did not start in 30 s:\n%s", name, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *labProc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// dialIn opens a TCP connection from inside ns: the socket is made on an
// OS thread switched into ns, then the thread switches back.
func dialIn(ns *labNS, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer self.Close()
		target, err := os.Open(ns.path())
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// call sends a request to p's API (inside its namespace) with its local
// token, as the CLI does, and decodes the JSON answer into out.
func (p *labProc) call(method, path string, body, out any) error {
	url, err := os.ReadFile(filepath.Join(p.data, node.APIFile))
	if err != nil {
		return err
	}
	tok, _ := os.ReadFile(filepath.Join(p.data, node.TokenFile))
	base := strings.TrimSpace(string(url))
	hostport := strings.TrimPrefix(base, "http://")
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return dialIn(p.ns, hostport) },
	}}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type labPeers struct {
	Peers []struct {
		ID       string   `json:"id"`
		Addrs    []string `json:"addrs"`
		Orchmind bool     `json:"orchmind"`
		Source   string   `json:"source"`
		Conn     string   `json:"conn"`
	} `json:"peers"`
	Network struct {
		Reachability   string         `json:"reachability"`
		Addrs          []string       `json:"addrs"`
		PublicDHT      bool           `json:"public_dht"`
		PublicDHTPeers int            `json:"public_dht_peers"`
		OrchmindPeers  int            `json:"orchmind_peers"`
		BySource       map[string]int `json:"by_source"`
		HolePunches    int            `json:"hole_punches"`
	} `json:"network"`
}

func (p *labProc) peers() labPeers {
	var out labPeers
	_ = p.call("GET", "/api/swarm/peers", nil, &out)
	return out
}

// peer returns how p sees the peer id: source and connection kind.
func (p *labProc) peer(id string) (source, conn string, ok bool) {
	for _, x := range p.peers().Peers {
		if x.ID == id {
			return x.Source, x.Conn, true
		}
	}
	return "", "", false
}

func (p *labProc) search(query string) []string {
	var out struct {
		Results []struct {
			CID string `json:"cid"`
		} `json:"results"`
	}
	_ = p.call("POST", "/api/swarm/search", map[string]any{"query": query}, &out)
	var cids []string
	for _, r := range out.Results {
		cids = append(cids, r.CID)
	}
	return cids
}

func (l *lab) waitFor(d time.Duration, what string, f func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			l.t.Fatalf("lab: timed out after %v waiting for %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// labAdapter writes an adapter folder named name for base b.
func labAdapter(t *testing.T, b *base.Base, name string, seed uint64) string {
	t.Helper()
	a, err := lora.New(b.Model, 4, 8, nil, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, k := range a.SortedKeys() {
		p := a.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	dir := filepath.Join(t.TempDir(), name)
	man := adapters.Manifest{Announced: adapters.Announced{Name: name, Description: "network lab adapter", Tags: []string{"lab"},
		BaseName: b.Name, BaseFingerprint: b.Fingerprint, Rank: a.Rank, Alpha: a.Alpha, TargetModules: []string{"q_proj"}},
		BaseShapeFingerprint: b.ShapeID, Created: time.Now()}
	if err := lora.WritePEFT(dir, a, man, b.Model); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInternetLab: two homes behind NAT find each other through the public
// DHT rendezvous alone, search, pull verified, connect relayed then direct
// after hole punching; a third home in a private room sees only its room's
// announcements; B restarted with the public nodes gone finds A again from
// its remembered peers.
func TestInternetLab(t *testing.T) {
	labPrereqs(t)
	m := testshared.Path(t, "models/stories260K/stories260K.bin")
	b, err := base.Load(m, "", model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, work: t.TempDir(), model: m}
	defer func() {
		for _, p := range slices.Backward(l.procs) {
			p.stop()
		}
		if t.Failed() {
			for _, p := range l.procs {
				lines := strings.Split(p.log.String(), "\n")
				t.Logf("--- %s (last lines)\n%s", p.name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	}()
	l.bin = filepath.Join(l.work, "orchmind")
	if out, err := exec.Command("go", "build", "-o", l.bin, "../cmd/orchmind").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	began := time.Now()

	// The internet: a bridge, four public addresses.
	inet := l.newNS("internet")
	l.in(inet, "ip", "link", "add", "br0", "type", "bridge")
	l.in(inet, "ip", "link", "set", "br0", "up")
	for k := 1; k <= labPublic; k++ {
		l.in(inet, "ip", "addr", "add", fmt.Sprintf("11.0.0.%d/24", k), "dev", "br0")
	}
	homes := []*labNS{l.router(inet, 1, natPreserving), l.router(inet, 2, natPreserving), l.router(inet, 3, natPreserving), l.router(inet, 4, natSymmetric)}

	// The public nodes' keys are made first, so that every node's
	// --public-bootstrap list can name them.
	var pubAddrs []string
	pubData := make([]string, labPublic)
	pubIDs := make([]string, labPublic)
	for k := range labPublic {
		pubData[k] = filepath.Join(l.work, fmt.Sprintf("public%d", k+1), "data")
		key, err := swarm.LoadOrCreateIdentity(pubData[k], slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peerIDOf(key)
		if err != nil {
			t.Fatal(err)
		}
		pubIDs[k] = id
		pubAddrs = append(pubAddrs, fmt.Sprintf("/ip4/11.0.0.%d/tcp/%s/p2p/%s", k+1, labPort, id),
			fmt.Sprintf("/ip4/11.0.0.%d/udp/%s/quic-v1/p2p/%s", k+1, labPort, id))
	}
	bootFlags := func(except int) []string {
		var f []string
		for i, a := range pubAddrs {
			if i/2 != except {
				f = append(f, "--public-bootstrap", a)
			}
		}
		return f
	}
	for k := range labPublic {
		ip := fmt.Sprintf("11.0.0.%d", k+1)
		args := append([]string{"--public-helper", "--listen", "/ip4/" + ip + "/tcp/" + labPort, "--listen", "/ip4/" + ip + "/udp/" + labPort + "/quic-v1"}, bootFlags(k)...)
		l.start(fmt.Sprintf("public%d", k+1), inet, pubData[k], fmt.Sprintf("127.0.0.1:%d", 11440+k), args...)
	}

	code, err := room.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	homeData := func(name string) string { return filepath.Join(l.work, name, "data") }
	a := l.start("A", homes[0], homeData("A"), "127.0.0.1:11435", append(bootFlags(-1), "--room", code)...)
	c := l.start("C", homes[2], homeData("C"), "127.0.0.1:11435", append(bootFlags(-1), "--room", code)...)
	// B comes once A is settled behind its NAT with a relay slot: had
	// both started together, each would dial the other's NAT address as
	// it found it in the rendezvous, and that simultaneous dial alone
	// passes port-preserving NATs (it does: A and C meet that way).
	l.waitFor(60*time.Second, "A to learn it is behind NAT and reserve a relay slot", func() bool {
		return a.peers().Network.Reachability == "nat-relay"
	})
	t.Logf("A reachable through relays after %.1f s", time.Since(began).Seconds())
	bn := l.start("B", homes[1], homeData("B"), "127.0.0.1:11435", bootFlags(-1)...)
	d := l.start("D", homes[3], homeData("D"), "127.0.0.1:11435", bootFlags(-1)...)
	idOf := func(p *labProc) string {
		key, err := swarm.LoadOrCreateIdentity(p.data, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peerIDOf(key)
		return id
	}
	aID, bID := idOf(a), idOf(bn)

	// A publishes one adapter to everyone and one into the room.
	l.waitFor(30*time.Second, "A to reach the public nodes", func() bool { return a.peers().Network.PublicDHTPeers > 0 })
	publish := func(dir, roomCode string) string {
		var info struct {
			Name string `json:"name"`
		}
		if err := a.call("POST", "/api/adapters/load", map[string]any{"path": dir}, &info); err != nil {
			t.Fatal(err)
		}
		var out struct {
			CID string `json:"cid"`
		}
		if err := a.call("POST", "/api/swarm/publish", map[string]any{"name": info.Name, "room": roomCode}, &out); err != nil {
			t.Fatal(err)
		}
		return out.CID
	}
	pubDir := labAdapter(t, b, "labpublic", 1)
	cidPublic := publish(pubDir, "")
	cidRoom := publish(labAdapter(t, b, "labroom", 2), code)

	// B knows nothing but the public list: it finds A by the rendezvous.
	var kinds []string
	defer func() {
		if t.Failed() {
			for _, p := range []*labProc{a, bn, c} {
				b, _ := json.MarshalIndent(p.peers(), "", " ")
				t.Logf("%s's peers: %s", p.name, b)
			}
		}
	}()
	l.waitFor(90*time.Second, "B to find A through the public DHT", func() bool {
		_, conn, ok := bn.peer(aID)
		if ok && (len(kinds) == 0 || kinds[len(kinds)-1] != conn) {
			kinds = append(kinds, conn)
		}
		return ok
	})
	src, _, _ := bn.peer(aID)
	t.Logf("B found A by %q after %.1f s; connection kinds seen: %v", src, time.Since(began).Seconds(), kinds)
	if src != swarm.SourcePublicDHT && src != swarm.SourceIncoming {
		t.Fatalf("B found A by %q, want public-dht", src)
	}
	// Both behind NAT, with no simultaneous dial: B reaches A through a
	// relay first. The relayed phase may be over before the first look
	// (DCUtR takes one round trip or two); a "hole-punched" connection is
	// one that DCUtR made over a relayed one.
	if kinds[0] != "relayed" && kinds[0] != "hole-punched" {
		t.Fatalf("B's first connection to A (both behind NAT) is %q, want relayed (or already hole-punched from it)", kinds[0])
	}
	l.waitFor(45*time.Second, "B's connection to A to go direct after hole punching", func() bool {
		_, conn, _ := bn.peer(aID)
		if conn != "" && kinds[len(kinds)-1] != conn {
			kinds = append(kinds, conn)
		}
		return conn == "hole-punched"
	})
	t.Logf("B to A, %s NAT on both sides: %v; B's reachability %q, hole punches %d", natPreserving.name, kinds,
		bn.peers().Network.Reachability, bn.peers().Network.HolePunches)
	l.waitFor(60*time.Second, "B to see A's announcement in search", func() bool {
		_, conn, _ := bn.peer(aID)
		if conn != "" && kinds[len(kinds)-1] != conn {
			kinds = append(kinds, conn)
		}
		return slices.Contains(bn.search("labpublic"), cidPublic)
	})
	var pulled struct {
		Dir string `json:"dir"`
	}
	if err := bn.call("POST", "/api/swarm/pull", map[string]any{"cid": cidPublic}, &pulled); err != nil {
		t.Fatalf("B pulling A's adapter: %v", err)
	}
	for _, f := range []string{"adapter_model.safetensors", "adapter_config.json"} {
		want, _ := os.ReadFile(filepath.Join(pubDir, f))
		got, err := os.ReadFile(filepath.Join(pulled.Dir, f))
		if err != nil || !bytes.Equal(got, want) || len(want) == 0 {
			t.Fatalf("B's pulled %s differs from A's (%v)", f, err)
		}
	}

	// D, behind a symmetric NAT, reaches A only through a relay.
	l.waitFor(30*time.Second, "D to find A through the public DHT", func() bool { _, _, ok := d.peer(aID); return ok })
	time.Sleep(3 * time.Second) // time for DCUtR to try
	dsrc, dconn, _ := d.peer(aID)
	t.Logf("D to A, %s NAT at D: found by %s, connection %s; D's reachability %q", natSymmetric.name, dsrc, dconn, d.peers().Network.Reachability)
	if dconn != "relayed" {
		t.Fatalf("D behind a symmetric NAT is connected to A by %q, want relayed", dconn)
	}
	csrc, cconn, _ := c.peer(aID)
	t.Logf("C to A (started together, both %s): found by %s, connection %s", natPreserving.name, csrc, cconn)

	// C, in A's room, sees the room's announcement; B, not in it, never.
	l.waitFor(60*time.Second, "C to see the room's announcement", func() bool { return slices.Contains(c.search("labroom"), cidRoom) })
	if slices.Contains(bn.search("labroom"), cidRoom) {
		t.Fatal("B, outside the room, sees the room's announcement")
	}

	// Restart: the public nodes go; B restarted finds A from memory.
	for _, p := range l.procs[:labPublic] {
		p.stop()
	}
	bn.stop()
	b2 := l.start("B2", homes[1], homeData("B"), "127.0.0.1:11435", bootFlags(-1)...)
	l.waitFor(60*time.Second, "B restarted to find A again from its remembered peers", func() bool {
		_, conn, ok := b2.peer(aID)
		return ok && conn != "relayed"
	})
	src, conn, _ := b2.peer(aID)
	if src != swarm.SourceRemembered {
		t.Fatalf("B restarted found A by %q, want remembered", src)
	}
	t.Logf("restarted B reached A by %s over a %s connection; whole lab %.1f s", src, conn, time.Since(began).Seconds())
	_ = bID
}

func peerIDOf(key crypto.PrivKey) (string, error) {
	id, err := peer.IDFromPrivateKey(key)
	return id.String(), err
}
