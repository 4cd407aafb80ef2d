package routing

import "testing"

func TestUpgradeAllows(t *testing.T) {
	t.Parallel()
	anyProto := &Upgrade{}
	wsOnly := &Upgrade{Protocols: []string{"websocket"}}
	tests := []struct {
		name  string
		u     *Upgrade
		value string
		want  bool
	}{
		{"websocket", anyProto, "websocket", true},
		{"case-insensitive", wsOnly, "WebSocket", true},
		{"versioned other protocol", anyProto, "line-echo/1", true},
		{"not listed", wsOnly, "line-echo/1", false},
		{"h2c never", anyProto, "h2c", false},
		{"h2c hidden in a list", anyProto, "websocket, h2c", false},
		{"every listed protocol must be accepted", wsOnly, "websocket, foo", false},
		{"empty", anyProto, "", false},
		{"only commas", anyProto, " , ", false},
		{"not a token", anyProto, "web socket", false},
		{"disabled route", nil, "websocket", false},
	}
	for _, tc := range tests {
		if got := tc.u.Allows([]byte(tc.value)); got != tc.want {
			t.Errorf("%s: Allows(%q) = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}
