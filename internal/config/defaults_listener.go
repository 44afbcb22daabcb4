package config

// Listener defaults. (Each part of the L7 schema keeps its defaults beside
// its types; the constants are still the one place a default is written.)
const (
	DefaultTLSMinVersion = "1.2"
)

func (c *Config) applyListenerDefaults() {
	for i := range c.L7.Listeners {
		if t := c.L7.Listeners[i].TLS; t != nil {
			def(&t.MinVersion, DefaultTLSMinVersion)
		}
	}
}
