// Package pgcluster runs a local PostgreSQL cluster from the server binaries
// installed on the machine (initdb, pg_ctl, postgres), for tests and for
// development. It is not meant for production: the cluster trusts every
// local TCP connection and listens on 127.0.0.1 only.
//
// A cluster lives in a data directory. [Init] creates it with initdb, or
// reuses it when the directory already holds one, so a development database
// survives restarts of the tools that use it. [Cluster.Start] and
// [Cluster.Stop] run the server through pg_ctl.
//
// PostgreSQL refuses to run as root, and both developers and CI run as root.
// When the process is root, the package therefore runs initdb, pg_ctl and the
// server as the "postgres" OS account (or "nobody" when there is none), gives
// that account the data directory, and checks that it can reach it. Use
// [MkdirTemp] rather than os.MkdirTemp for the directory that holds a
// throwaway cluster: os.MkdirTemp makes directories the server's account
// cannot enter.
//
// The binaries are found through the TENANTRY_PG_BIN environment variable,
// then the newest /usr/lib/postgresql/*/bin (Debian and Ubuntu), then PATH;
// see [FindBinDir].
package pgcluster
