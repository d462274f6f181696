package runtimeapi

import "syscall"

// sysProcAttr makes the kernel SIGKILL a function process when the runner dies,
// so a crashed or killed runner leaves no bootstraps behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
