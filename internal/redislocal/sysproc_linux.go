package redislocal

import "syscall"

// sysProcAttr makes the kernel SIGKILL redis-server when its parent dies, so a test
// binary killed by -timeout or Ctrl-C does not leave a server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
