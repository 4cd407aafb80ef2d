package gateway

import (
	"fmt"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/routing"
)

// Upgrade defaults: documented on their fields in package config and in
// docs/routes.md.
const (
	defaultUpgradeIdle        = 5 * time.Minute
	defaultUpgradeMaxDuration = 24 * time.Hour
)

// defaultUpgrade is the policy of routes that do not configure one (the
// default route included).
var defaultUpgrade = &routing.Upgrade{Idle: defaultUpgradeIdle, MaxDuration: defaultUpgradeMaxDuration}

// routeUpgrade compiles a route's upgrade section.
func (c *compiler) routeUpgrade(path string, us *config.UpgradeSpec, r *routing.Route) {
	if us == nil {
		r.Upgrade = defaultUpgrade
		return
	}
	up := path + ".upgrade"
	u := &routing.Upgrade{
		Idle:        c.ix.Duration(up+".idle", us.Idle, defaultUpgradeIdle, false),
		MaxDuration: c.ix.Duration(up+".max_duration", us.MaxDuration, defaultUpgradeMaxDuration, true),
	}
	for i, p := range us.Protocols {
		pp := fmt.Sprintf("%s.protocols[%d]", up, i)
		switch lp := strings.ToLower(p); {
		case !ascii.IsToken(p):
			c.errorf(pp, "bad protocol %q: a token like websocket", p)
		case lp == "h2c":
			c.errorf(pp, "h2c is never passed: HTTP/2 cleartext through a tunnel would bypass every check the gateway makes")
		default:
			u.Protocols = append(u.Protocols, lp)
		}
	}
	if us.Disabled {
		if len(us.Protocols) > 0 {
			c.errorf(up+".protocols", "protocols with disabled: true: remove one of them")
		}
		return
	}
	r.Upgrade = u
}
