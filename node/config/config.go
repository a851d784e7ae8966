package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"orchmind/engine/hub"
	"orchmind/engine/quant"
	"orchmind/internal/atomicfile"
	"orchmind/protocol/room"
)

// FileName is the settings file's name inside the data folder.
const FileName = "config.json"

// Config is what a node starts with when its flags do not say otherwise.
type Config struct {
	// Model is the base: ollama:NAME, hf:ORG/REPO[:QUANT] or an absolute path.
	Model     string `json:"model,omitempty"`
	Tokenizer string `json:"tokenizer,omitempty"`
	Quant     string `json:"quant,omitempty"`
	// Port is the libp2p port (TCP and QUIC) when Listen is empty.
	Port      int      `json:"port,omitempty"`
	Listen    []string `json:"listen,omitempty"`
	Bootstrap []string `json:"bootstrap,omitempty"`
	Rooms     []string `json:"rooms,omitempty"`
	// API is the address of the local HTTP API and web UI.
	API         string `json:"api,omitempty"`
	AdaptersDir string `json:"adapters_dir,omitempty"`
	// MDNS, when set, turns looking for peers on the local network on or off.
	MDNS *bool `json:"mdns,omitempty"`
	// PublicDHT, when set, turns finding peers through the public IPFS DHT
	// on or off (default on).
	PublicDHT *bool `json:"public_dht,omitempty"`
	// PublicBootstrap replaces libp2p's default bootstrap peers of the
	// public DHT: multiaddrs ending in /p2p/ID, or /dnsaddr/NAME.
	PublicBootstrap []string `json:"public_bootstrap,omitempty"`
	// PublicHelper makes the node serve others: public DHT server and
	// relay (for an always-on machine with a public address).
	PublicHelper bool `json:"public_helper,omitempty"`
}

// Key describes one setting.
type Key struct {
	Name string
	Help string
	// List keys take several values (set replaces them all).
	List bool
}

// Keys are the settings `orchmind config` knows.
var Keys = []Key{
	{"model", "base model: ollama:NAME, hf:ORG/REPO[:QUANT] or a path (see orchmind model list)", false},
	{"tokenizer", "the base's tokenizer file, when it has none of its own", false},
	{"quant", "hold the weights as f32, f16, bf16, q8_0, q4_0 or q4_1", false},
	{"port", "libp2p port for TCP and QUIC on IPv4 and IPv6 (default 4747, a free one when taken; 0: any free port)", false},
	{"listen", "libp2p listen multiaddrs (replace port)", true},
	{"bootstrap", "peers to dial on start, /ip4/…/tcp/…/p2p/ID", true},
	{"rooms", "private room codes to join", true},
	{"api", "address of the local API and web UI, host:port", false},
	{"adapters-dir", "folder of local adapters", false},
	{"mdns", "look for peers on the local network: true or false", false},
	{"public-dht", "find orchmind nodes on the internet through the public IPFS DHT: on or off (default on)", false},
	{"public-bootstrap", "bootstrap peers of the public DHT instead of libp2p's: /ip4/…/tcp/…/p2p/ID or /dnsaddr/NAME", true},
	{"public-helper", "serve others from a public address: public DHT server and relay: true or false", false},
}

// Path is the settings file of dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Load reads dataDir's settings; exists is false (and c empty) when there
// is no file yet.
func Load(dataDir string) (c *Config, exists bool, err error) {
	b, err := os.ReadFile(Path(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("config: %w", err)
	}
	c = &Config{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, true, fmt.Errorf("config %s is not valid JSON (%v): fix or delete it", Path(dataDir), err)
	}
	return c, true, nil
}

// Save writes the settings into dataDir, whole or not at all.
func (c *Config) Save(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(Path(dataDir), append(b, '\n'), 0o600)
}

func lookup(name string) (Key, error) {
	name = strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	if name == "room" {
		name = "rooms"
	}
	for _, k := range Keys {
		if k.Name == name {
			return k, nil
		}
	}
	var names []string
	for _, k := range Keys {
		names = append(names, k.Name)
	}
	return Key{}, fmt.Errorf("unknown setting %q (known: %s)", name, strings.Join(names, ", "))
}

// Set checks and sets key to values (several for list keys; none clears
// the key).
func (c *Config) Set(key string, values ...string) error {
	k, err := lookup(key)
	if err != nil {
		return err
	}
	if !k.List && len(values) > 1 {
		return fmt.Errorf("%s takes one value, got %d", k.Name, len(values))
	}
	one := ""
	if len(values) == 1 {
		one = strings.TrimSpace(values[0])
	}
	switch k.Name {
	case "model":
		if one != "" && !hub.IsSpec(one) {
			abs, err := filepath.Abs(one)
			if err != nil {
				return err
			}
			if _, err := os.Stat(abs); err != nil {
				return fmt.Errorf("model %s: %w (give ollama:NAME, hf:ORG/REPO or an existing path)", one, err)
			}
			one = abs
		} else if one != "" {
			s, rest := hub.Scheme(one)
			if s == "ollama" {
				if _, err := hub.ParseOllamaName(rest); err != nil {
					return err
				}
			} else if _, err := hub.ParseHFName(rest); err != nil {
				return err
			}
		}
		c.Model = one
	case "tokenizer", "adapters-dir":
		if one != "" {
			abs, err := filepath.Abs(one)
			if err != nil {
				return err
			}
			one = abs
		}
		if k.Name == "tokenizer" {
			c.Tokenizer = one
		} else {
			c.AdaptersDir = one
		}
	case "quant":
		if one != "" {
			if _, err := quant.ParseType(one); err != nil {
				return fmt.Errorf("quant: %w", err)
			}
		}
		c.Quant = one
	case "port":
		p := 0
		if one != "" {
			if p, err = strconv.Atoi(one); err != nil || p < 0 || p > 65535 {
				return fmt.Errorf("port %q is not a number from 0 to 65535", one)
			}
			if p == 0 {
				p = -1 // any free port, as against unset (the default port)
			}
		}
		c.Port = p
	case "public-dht", "public-helper":
		var v *bool
		if one != "" {
			b, err := parseOnOff(one)
			if err != nil {
				return fmt.Errorf("%s %q: use on or off", k.Name, one)
			}
			v = &b
		}
		if k.Name == "public-dht" {
			c.PublicDHT = v
		} else {
			c.PublicHelper = v != nil && *v
		}
	case "public-bootstrap":
		for _, v := range values {
			if err := CheckPublicBootstrap(v); err != nil {
				return err
			}
		}
		c.PublicBootstrap = values
	case "listen", "bootstrap":
		for _, v := range values {
			a, err := ma.NewMultiaddr(v)
			if err != nil {
				return fmt.Errorf("%s %q is not a multiaddr: %w", k.Name, v, err)
			}
			if k.Name == "bootstrap" {
				if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
					return fmt.Errorf("bootstrap %q has no /p2p/PEER-ID part", v)
				}
			}
		}
		if k.Name == "listen" {
			c.Listen = values
		} else {
			c.Bootstrap = values
		}
	case "rooms":
		for _, v := range values {
			if _, err := room.Join(v); err != nil {
				return fmt.Errorf("room %q: %w", v, err)
			}
		}
		c.Rooms = values
	case "api":
		if one != "" {
			if _, _, err := net.SplitHostPort(one); err != nil {
				return fmt.Errorf("api %q is not host:port: %w", one, err)
			}
		}
		c.API = one
	case "mdns":
		if one == "" {
			c.MDNS = nil
			break
		}
		v, err := strconv.ParseBool(one)
		if err != nil {
			return fmt.Errorf("mdns %q: use true or false", one)
		}
		c.MDNS = &v
	}
	if len(values) == 0 && k.List {
		switch k.Name {
		case "listen":
			c.Listen = nil
		case "bootstrap":
			c.Bootstrap = nil
		case "rooms":
			c.Rooms = nil
		case "public-bootstrap":
			c.PublicBootstrap = nil
		}
	}
	return nil
}

// Get returns key's values (none when unset).
func (c *Config) Get(key string) ([]string, error) {
	k, err := lookup(key)
	if err != nil {
		return nil, err
	}
	one := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	switch k.Name {
	case "model":
		return one(c.Model), nil
	case "tokenizer":
		return one(c.Tokenizer), nil
	case "quant":
		return one(c.Quant), nil
	case "port":
		if c.Port == 0 {
			return nil, nil
		}
		return []string{strconv.Itoa(max(c.Port, 0))}, nil
	case "public-dht":
		if c.PublicDHT == nil {
			return nil, nil
		}
		return []string{onOff(*c.PublicDHT)}, nil
	case "public-bootstrap":
		return c.PublicBootstrap, nil
	case "public-helper":
		if !c.PublicHelper {
			return nil, nil
		}
		return []string{"on"}, nil
	case "listen":
		return c.Listen, nil
	case "bootstrap":
		return c.Bootstrap, nil
	case "rooms":
		return c.Rooms, nil
	case "api":
		return one(c.API), nil
	case "adapters-dir":
		return one(c.AdaptersDir), nil
	case "mdns":
		if c.MDNS == nil {
			return nil, nil
		}
		return []string{strconv.FormatBool(*c.MDNS)}, nil
	}
	return nil, nil
}

// ListenAddrs are the libp2p listen addresses: Listen, else TCP and QUIC on
// Port on all interfaces, else none (the swarm's default).
func (c *Config) ListenAddrs() []string {
	if len(c.Listen) > 0 || c.Port <= 0 {
		return c.Listen
	}
	p := strconv.Itoa(c.Port)
	return []string{"/ip4/0.0.0.0/tcp/" + p, "/ip4/0.0.0.0/udp/" + p + "/quic-v1"}
}

// Names are the setting names in order, for help texts.
func Names() []string {
	var s []string
	for _, k := range Keys {
		s = append(s, k.Name)
	}
	sort.Strings(s)
	return s
}

// parseOnOff reads on/off, true/false, yes/no, 1/0.
func parseOnOff(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "yes":
		return true, nil
	case "off", "no":
		return false, nil
	}
	return strconv.ParseBool(s)
}

// ParseOnOff reads a switch given as on/off, true/false, yes/no or 1/0.
func ParseOnOff(s string) (bool, error) {
	v, err := parseOnOff(s)
	if err != nil {
		return false, fmt.Errorf("%q: use on or off", s)
	}
	return v, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// CheckPublicBootstrap checks one public DHT bootstrap address: a multiaddr
// ending in /p2p/ID, or a /dnsaddr name.
func CheckPublicBootstrap(v string) error {
	a, err := ma.NewMultiaddr(v)
	if err != nil {
		return fmt.Errorf("public-bootstrap %q is not a multiaddr: %w", v, err)
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return nil
	}
	if _, err := a.ValueForProtocol(ma.P_DNSADDR); err == nil {
		return nil
	}
	return fmt.Errorf("public-bootstrap %q names no peer: end it in /p2p/PEER-ID or give /dnsaddr/NAME", v)
}
