// Package localproc supervises the server processes that tests and the local runner start on the loopback address
// (DynamoDB Local, redis-server, PostgreSQL): one child process per server, its output kept as a short tail for
// start-up errors, a bounded wait until it answers that notices when it dies instead, and a stop by its PID with a
// bounded grace before SIGKILL.
//
// It knows nothing of the servers themselves: ddblocal, redislocal and pglocal build the command line, the
// readiness probe and the error messages a developer reads; localproc holds the parts that were the same in all
// three.
//
//	err := localproc.OnPort(ctx, 0, func(port int) error {
//		p, err := localproc.Start(localproc.Command{Name: "redis-server", Path: bin, Args: args(port)})
//		if err != nil {
//			return err
//		}
//		if err := p.WaitReady(ctx, 20*time.Millisecond, ping(port)); err != nil {
//			_ = p.Stop(os.Kill, 0)
//			return err
//		}
//		...
//	}, addressInUse)
package localproc
