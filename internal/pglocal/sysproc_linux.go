package pglocal

import "syscall"

// sysProcAttr runs the process as cred (nil: as the current user) and makes the kernel send it SIGQUIT when its
// parent dies: SIGQUIT is PostgreSQL's immediate shutdown, which also ends the server's own children, so a test
// binary killed by -timeout or Ctrl-C leaves no server behind. Go sets the parent-death signal after switching
// credentials (a credential change would clear it).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
