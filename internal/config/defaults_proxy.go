package config

// Proxy-wide L7 defaults.
const (
	DefaultRequestIDHeader = "X-Request-Id"
	DefaultAccessLogPath   = "stdout"
	DefaultAccessLogBuffer = 4096
)

// applyProxyDefaults fills the proxy-wide L7 settings. It is called from
// applyDefaults beside the listener, route and pool defaults.
func (c *Config) applyProxyDefaults() {
	def(&c.L7.RequestIDHeader, DefaultRequestIDHeader)
	def(&c.L7.AccessLog.Path, DefaultAccessLogPath)
	def(&c.L7.AccessLog.Buffer, DefaultAccessLogBuffer)
}
