// Command composecheck loads a Compose file the way `docker compose config` does, with
// compose-go (the library Docker Compose is built on): the Compose specification's schema,
// interpolation from the environment and a .env file, merge keys, relative paths resolved,
// and the consistency checks. It prints the resolved model as YAML, or the errors and
// exits 1. The deploy tests use it where Docker Compose itself is not installed.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{os.Args[1]},
		cli.WithOsEnv, cli.WithDotEnv, cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "composecheck:", err)
	os.Exit(1)
}
