// Package e2e holds end-to-end tests of the newcomer's path: they run
// deploy/scripts/run-dev.sh (what `make run` runs) as a subprocess, wait for
// its banner, run the grpcurl commands the banner prints exactly as printed,
// with the real grpcurl, then stop the script as Ctrl-C does and check that
// nothing it started is left running.
//
// The package has no code of its own, only tests; `make test` runs them
// against the throwaway PostgreSQL of withpg (see package pgtest).
package e2e
