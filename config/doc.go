// Package config is the configuration's schema: the types a YAML file decodes into, where
// each value stood (Pos, FILE:LINE:COL), the problems a config can have, the one list of
// secret settings (IsSecret, Redacted) and the config version. It knows no sockets, no hits
// and no YAML: config/load reads files, rules compiles a Config into what a hit looks up.
// It imports nothing of ours; every other package may import it.
package config
