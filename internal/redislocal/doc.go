// Package redislocal starts and stops a real redis-server (Debian's package, or any compatible server such as
// valkey-server) on a loopback port, for integration tests and the local runner.
//
// The server runs in the foreground of a child process, bound to 127.0.0.1 on a free port, in a directory of its
// own, with persistence off unless asked for:
//
//	redis-server --port <port> --bind 127.0.0.1 --dir <dir> --save '' --appendonly no --logfile ''
//
//	inst, err := redislocal.Start(ctx, redislocal.Options{})
//	if err != nil { ... }
//	defer inst.Stop()
//	client := redis.NewClient(&redis.Options{Addr: inst.Addr()})
//
// Tests use the redistest subpackage, which shares one server per test binary.
package redislocal
