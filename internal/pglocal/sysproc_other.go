//go:build unix && !linux

package pglocal

import "syscall"

// sysProcAttr runs the process as cred (nil: as the current user). Only Linux has a parent-death signal;
// elsewhere Stop must be called.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
