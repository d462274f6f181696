//go:build !linux

package redislocal

import "syscall"

// sysProcAttr: only Linux has a parent-death signal; elsewhere Stop must be called.
func sysProcAttr() *syscall.SysProcAttr { return nil }
