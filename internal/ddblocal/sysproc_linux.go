package ddblocal

import "syscall"

// sysProcAttr makes the kernel SIGKILL the JVM when its parent dies, so a test
// binary killed by -timeout or Ctrl-C does not leave a DynamoDB Local behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
