package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret returns a secret from its file or environment variable, trimmed;
// "" when neither is set. path is the key without its _file/_env suffix
// (e.g. "stages.jit_access.znuny.password"), named in errors. Secrets are
// never logged nor put in error text.
func Secret(path, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", path, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s_file: %s is empty", path, file)
		}
		return s, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("%s_env: %s is not set", path, env)
		}
		return strings.TrimSpace(v), nil
	}
	return "", nil
}

// checkSecret adds a problem unless a secret comes from at most one of
// <name>_file and <name>_env under path (exactly one when required); a
// file must be readable.
func checkSecret(p *Problems, path, name, file, env string, required bool) {
	switch {
	case file != "" && env != "":
		p.add(path, "set %s_file or %s_env, not both", name, name)
	case file == "" && env == "" && required:
		p.add(path+"."+name+"_file", "missing (or set %s_env)", name)
	}
	checkFile(p, path+"."+name+"_file", file)
}
