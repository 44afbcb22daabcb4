package daemon

import "github.com/portcullis-lb/portcullis/internal/config"

// TEMPORARY until l4 lands.
type l4Plane struct{}

func l4Services(*config.Config) ([]struct{}, error)          { return nil, nil }
func (d *Daemon) applyL4(*config.Config, []struct{}) error   { return nil }
func (d *Daemon) closeL4()                                   {}
func (d *Daemon) l4Status() any                              { return nil }
