package config

func (c *Config) applyRouteDefaults() {}
