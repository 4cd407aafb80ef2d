package admin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Role is what a token may do.
type Role string

const (
	// RoleAdmin reads everything and changes state.
	RoleAdmin Role = "admin"
	// RoleRead reads everything a token may read (state, shadow results,
	// the audit trail) and changes nothing: the operator console's
	// read-only view, dashboards, auditors.
	RoleRead Role = "read"
)

// Token is a named bearer token: its name is what audit events show.
type Token struct {
	Name string
	Role Role
}

// Tokens map a bearer token to its name and role.
type Tokens map[string]Token

// LoadTokens reads STRANGLER_ADMIN_TOKEN (named "admin", role admin) and
// the tokens file: one "name token" (role admin) or "name token role"
// (role admin or read) per line, fields separated by spaces or tabs; #
// starts a comment line. Every token is at least 16 characters.
func LoadTokens(file string) (Tokens, error) {
	out := Tokens{}
	if t := os.Getenv("STRANGLER_ADMIN_TOKEN"); t != "" {
		if len(t) < 16 {
			return nil, errors.New("STRANGLER_ADMIN_TOKEN is shorter than 16 characters")
		}
		out[t] = Token{Name: "admin", Role: RoleAdmin}
	}
	if file == "" {
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("admin tokens: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || len(fields) > 3 || len(fields[1]) < 16 {
			return nil, fmt.Errorf("%s:%d: want \"name token\" or \"name token read\" with a token of at least 16 characters", file, n)
		}
		role := RoleAdmin
		if len(fields) == 3 {
			role = Role(fields[2])
			if role != RoleAdmin && role != RoleRead {
				return nil, fmt.Errorf("%s:%d: unknown role %q: admin or read", file, n, fields[2])
			}
		}
		out[fields[1]] = Token{Name: fields[0], Role: role}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("admin tokens: %w", err)
	}
	return out, nil
}
