package admin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadTokens reads STRANGLER_ADMIN_TOKEN (named "admin") and the
// tokens file ("name token" per line; # comments).
func LoadTokens(file string) (map[string]string, error) {
	out := map[string]string{}
	if t := os.Getenv("STRANGLER_ADMIN_TOKEN"); t != "" {
		if len(t) < 16 {
			return nil, errors.New("STRANGLER_ADMIN_TOKEN is shorter than 16 characters")
		}
		out[t] = "admin"
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
		name, tok, ok := strings.Cut(line, " ")
		tok = strings.TrimSpace(tok)
		if !ok || len(tok) < 16 {
			return nil, fmt.Errorf("%s:%d: want \"name token\" with a token of at least 16 characters", file, n)
		}
		out[tok] = name
	}
	return out, sc.Err()
}
