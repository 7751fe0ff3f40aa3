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
